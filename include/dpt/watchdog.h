/* dpt/watchdog.h - the stall watchdog: a rank that waits in a collective
 * longer than a limit says where and aborts the whole job, instead of
 * hanging silently until the batch system's time limit.
 *
 * One watchdog per process (it watches the process, not a communicator):
 * a thread wakes every second and checks whether the process has been
 * inside one blocking collective (between dpt_watchdog_enter and
 * dpt_watchdog_leave, which the dist module's collectives call) for more
 * than the limit. If so it prints
 *   dptrain: error: rank R: no progress for 612 s in <phase> at step S
 *   ([reliability] watchdog_seconds = 600); aborting the job
 * and calls MPI_Abort on MPI_COMM_WORLD (the process must have initialized
 * MPI with at least MPI_THREAD_FUNNELED; should MPI_Abort return, _exit).
 * The phase is a label the trainer sets ("gradient reduction", "evaluation",
 * "checkpoint", ...). Everything here is cheap enough for every step: an
 * atomic store per enter and leave.
 */
#ifndef DPT_WATCHDOG_H
#define DPT_WATCHDOG_H

#include "dpt/error.h"

/* Starts the thread (seconds > 0; 0 or less: the watchdog stays off and
 * every other call is a no-op). rank names the process in the message. */
dpt_status dpt_watchdog_start(double seconds, int rank);
/* Stops and joins the thread. Safe when not started. */
void dpt_watchdog_stop(void);

/* The label of what the process does now, and the training step (a string
 * literal or other storage that outlives its use). */
void dpt_watchdog_phase(const char *phase, long step);
/* Around a blocking collective: the clock runs between them. Nested
 * enters count once (the outermost). */
void dpt_watchdog_enter(void);
void dpt_watchdog_leave(void);

#endif /* DPT_WATCHDOG_H */
