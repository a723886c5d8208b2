/*
 * partition_round: gs_partition_round on every line of stdin, `PERCENT TOTAL MIN STEP`, one
 * answer per line. The TypeScript parity test (src/domain/smpartition.test.ts) feeds it the
 * same table as src/domain/smpartition.ts's partitionSize, so the daemon's choice of a
 * partition's size can never drift from what libgpushare makes.
 */
#include <stdio.h>

#include "partition_round.h"

int main(void)
{
    double percent;
    unsigned int total, min, step;
    int n;
    while ((n = scanf("%lf %u %u %u", &percent, &total, &min, &step)) == 4)
        printf("%u\n", gs_partition_round(percent, total, min, step));
    if (n != EOF) {
        fprintf(stderr, "partition_round: expected lines of PERCENT TOTAL MIN STEP\n");
        return 2;
    }
    return 0;
}
