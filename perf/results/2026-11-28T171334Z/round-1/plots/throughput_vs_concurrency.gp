set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-1/throughput_vs_concurrency.png'
set title 'Payload throughput vs concurrent connections (1 MiB requests)'
set logscale x 2
set xlabel 'connections'
set ylabel 'MB/s (verified payload)'
plot '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-1/plots/sweep-tor.dat' using 1:2 with linespoints lw 2 title 'tor', '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-1/plots/sweep-onionring.dat' using 1:2 with linespoints lw 2 title 'onionring'
