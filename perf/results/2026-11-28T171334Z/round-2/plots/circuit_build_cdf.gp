set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/circuit_build_cdf.png'
set title 'Circuit build time (CDF)'
set logscale x
set xlabel 'ms'
set ylabel 'fraction of circuits'
set key bottom right
plot '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/plots/circ-onionring.dat' using 1:2 with lines lw 2 title 'onionring', '/tmp/sbs9b/perf/results/2026-11-28T171334Z/round-2/plots/circ-tor.dat' using 1:2 with lines lw 2 title 'tor'
