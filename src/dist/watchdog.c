/* The stall watchdog (dpt/watchdog.h). */
#include "dpt/watchdog.h"

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    int running;
    double limit;
    int rank;
    pthread_t thread;
    pthread_mutex_t lock;       /* with wake: lets dpt_watchdog_stop end the wait at once */
    pthread_cond_t wake;
    int stopping;
    _Atomic(const char *) phase;
    atomic_long step;
    atomic_int depth;           /* nesting of enter/leave */
    _Atomic double entered;     /* monotonic seconds at the outermost enter */
} dog = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bite(double waited)
{
    const char *phase = atomic_load(&dog.phase);
    fprintf(stderr, "dptrain: error: rank %d: no progress for %.0f s in %s at step %ld "
            "([reliability] watchdog_seconds = %g); aborting the job\n", dog.rank, waited,
            phase ? phase : "a collective", atomic_load(&dog.step), dog.limit);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1); /* MPI_Abort should not return; if it does, end this rank anyway */
}

static void *watch(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&dog.lock);
    while (!dog.stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&dog.wake, &dog.lock, &until);
        if (dog.stopping || atomic_load(&dog.depth) == 0) continue;
        double waited = now_seconds() - atomic_load(&dog.entered);
        if (waited > dog.limit) {
            pthread_mutex_unlock(&dog.lock);
            bite(waited);
        }
    }
    pthread_mutex_unlock(&dog.lock);
    return NULL;
}

dpt_status dpt_watchdog_start(double seconds, int rank)
{
    if (dog.running || !(seconds > 0)) return DPT_OK;
    dog.limit = seconds;
    dog.rank = rank;
    dog.stopping = 0;
    atomic_store(&dog.depth, 0);
    int rc = pthread_create(&dog.thread, NULL, watch, NULL);
    if (rc != 0) return DPT_FAIL(DPT_ERR_IO, "cannot start the watchdog thread: %s", strerror(rc));
    dog.running = 1;
    return DPT_OK;
}

void dpt_watchdog_stop(void)
{
    if (!dog.running) return;
    pthread_mutex_lock(&dog.lock);
    dog.stopping = 1;
    pthread_cond_signal(&dog.wake);
    pthread_mutex_unlock(&dog.lock);
    pthread_join(dog.thread, NULL);
    dog.running = 0;
}

void dpt_watchdog_phase(const char *phase, long step)
{
    atomic_store(&dog.phase, phase);
    atomic_store(&dog.step, step);
}

void dpt_watchdog_enter(void)
{
    if (atomic_fetch_add(&dog.depth, 1) == 0) atomic_store(&dog.entered, now_seconds());
}

void dpt_watchdog_leave(void)
{
    atomic_fetch_sub(&dog.depth, 1);
}
