/*
 * gs_partition_round on its own (no CUDA, no shim state), so that the node daemon's copy of
 * the rule (src/domain/smpartition.ts, partitionSize) can be checked against this very code:
 * build/native/shim/tests/partition_round runs it on the lines it reads (see
 * shim/tests/partition_round_main.c and src/domain/smpartition.test.ts).
 */
#include <math.h>

#include "partition_round.h"

unsigned int gs_partition_round(double percent, unsigned int total, unsigned int min, unsigned int step)
{
    double want = percent * total / 100.0;
    if (step == 0)
        step = 1;
    /* Sizes the driver makes: the minimum, or multiples of the step above it. Nearest wins
     * (a tie goes down), so 50% of 132 SMs is 64, and two halves fit side by side. */
    unsigned int lo = (unsigned int)floor(want / step) * step;
    unsigned int hi = (unsigned int)ceil(want / step) * step;
    if (lo < min)
        lo = min;
    if (hi < min)
        hi = min;
    unsigned int pick = (want - lo <= hi - want) ? lo : hi;
    if (pick > total)
        pick = lo <= total ? lo : total;
    return pick;
}
