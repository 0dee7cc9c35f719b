/* Stop requests from signal handlers (dpt/train.h): a flag that is safe
 * to set from a handler and that the trainer reads at step boundaries,
 * where all ranks agree on it in a reduction they make anyway. */
#include <signal.h>

#include "dpt/train.h"

static volatile sig_atomic_t requested_signal;

void dpt_request_stop(int signo)
{
    requested_signal = signo > 0 ? signo : 1;
}

int dpt_stop_requested(void)
{
    return requested_signal;
}
