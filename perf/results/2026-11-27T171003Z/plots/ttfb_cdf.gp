set terminal pngcairo size 900,560
set grid
set key top left
set output '/work/main/perf/results/2026-11-27T171003Z/ttfb_cdf.png'
set title 'Time to first byte, churn workload (CDF)'
set logscale x
set xlabel 'TTFB (ms, from connect() to first response byte)'
set ylabel 'fraction of requests'
set key bottom right
plot '/work/main/perf/results/2026-11-27T171003Z/raw/tor-churn.ttfb' using 1:($0+1)/487 with lines lw 2 title 'tor', '/work/main/perf/results/2026-11-27T171003Z/raw/onionring-churn.ttfb' using 1:($0+1)/489 with lines lw 2 title 'onionring'
