set terminal pngcairo size 900,560
set grid
set key top left
set output '/tmp/sbs9b/perf/results/2026-11-28T171334Z/cpu_per_gb_rounds.png'
set title 'Gateway CPU seconds (user+sys, /proc) per GB of payload, every round'
set datafile missing '?'
set style data histograms
set style histogram clustered
set style fill solid 0.8 border -1
set key below
set ylabel 's/GB'
set yrange [0:*]
plot '/tmp/sbs9b/perf/results/2026-11-28T171334Z/plots/cpu_per_gb_rounds.dat' using 2:xtic(1) title 'tor', '' using 3 title 'onionring'
