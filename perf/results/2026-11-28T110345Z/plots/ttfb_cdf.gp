set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs7/perf/results/2026-11-28T110345Z/ttfb_cdf.png'
set title 'Time to first byte, churn workload (CDF)'
set logscale x
set xlabel 'TTFB (ms, from connect() to first response byte)'
set ylabel 'fraction of requests'
set key bottom right
plot '/tmp/sbs7/perf/results/2026-11-28T110345Z/raw/tor-churn.ttfb' using 1:($0+1)/5963 with lines lw 2 title 'tor', '/tmp/sbs7/perf/results/2026-11-28T110345Z/raw/onionring-churn.ttfb' using 1:($0+1)/9275 with lines lw 2 title 'onionring'
