set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs/perf/results/2026-11-28T080040Z/ttfb_cdf.png'
set title 'Time to first byte, churn workload (CDF)'
set logscale x
set xlabel 'TTFB (ms, from connect() to first response byte)'
set ylabel 'fraction of requests'
set key bottom right
plot '/tmp/sbs/perf/results/2026-11-28T080040Z/raw/tor-churn.ttfb' using 1:($0+1)/6262 with lines lw 2 title 'tor', '/tmp/sbs/perf/results/2026-11-28T080040Z/raw/onionring-churn.ttfb' using 1:($0+1)/5851 with lines lw 2 title 'onionring'
