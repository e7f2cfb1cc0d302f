set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/ttfb_cdf.png'
set title 'Time to first byte, churn workload (CDF)'
set logscale x
set xlabel 'TTFB (ms, from connect() to first response byte)'
set ylabel 'fraction of requests'
set key bottom right
plot '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/raw/onionring-churn.ttfb' using 1:($0+1)/10125 with lines lw 2 title 'onionring', '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/raw/tor-churn.ttfb' using 1:($0+1)/5976 with lines lw 2 title 'tor'
