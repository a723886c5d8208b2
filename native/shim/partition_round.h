#ifndef GS_PARTITION_ROUND_H
#define GS_PARTITION_ROUND_H

/* SMs for `percent` of `total`: the nearest size the driver makes (min, or a multiple of step). */
unsigned int gs_partition_round(double percent, unsigned int total, unsigned int min, unsigned int step);

#endif
