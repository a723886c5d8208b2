/*
 * compute_hold.h: the compute gate held shut for a slice swap (swap.c). While held, every
 * launch waits at the gate (in gs_gov_mode_setup, off the launch's fast path) until the
 * gate opens again; the gate costs nothing more when no swap happens.
 */
#ifndef GS_COMPUTE_HOLD_H
#define GS_COMPUTE_HOLD_H

/* From now on launches wait (the caller has set gs_swap_held first). */
void gs_compute_hold(void);
/* Launches go again as before the hold (the caller then clears gs_swap_held). */
void gs_compute_open(void);

#endif /* GS_COMPUTE_HOLD_H */
