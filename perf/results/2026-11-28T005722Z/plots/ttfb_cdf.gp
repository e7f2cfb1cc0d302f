set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs-lead.RTJG/perf/results/2026-11-28T005722Z/ttfb_cdf.png'
set title 'Time to first byte, churn workload (CDF)'
set logscale x
set xlabel 'TTFB (ms, from connect() to first response byte)'
set ylabel 'fraction of requests'
set key bottom right
plot '/tmp/sbs-lead.RTJG/perf/results/2026-11-28T005722Z/raw/tor-churn.ttfb' using 1:($0+1)/5823 with lines lw 2 title 'tor', '/tmp/sbs-lead.RTJG/perf/results/2026-11-28T005722Z/raw/onionring-churn.ttfb' using 1:($0+1)/5827 with lines lw 2 title 'onionring'
