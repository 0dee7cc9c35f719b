/* Round-trip time of one cache line between two CPUs: two threads, one
 * pinned to each, hand a counter back and forth. About 60-80 ns when the two
 * share an L3 (one core complex of an AMD EPYC), over 300 ns across core
 * complexes. On the development VM the hypervisor moves the two vCPUs
 * between these placements from one minute to the next, and every 2-rank
 * run follows: the data the ranks exchange each step (gradient and
 * parameter halves) crosses the slower link, and so do the writes that
 * must first take those cache lines back. bench/compare.sh records this
 * before and after each timed run to tell the two apart.
 *
 *   core_latency [CPU_A CPU_B] [ROUNDS]     defaults: 0 1 200000
 *
 * Prints {"c2c_ns": ...} (nanoseconds per round trip). A benchmark tool:
 * it asserts nothing. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) atomic_long ball;
static long rounds = 200000;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The other side: waits for each odd value and answers with the next one. */
static void *answer(void *arg)
{
    pin(*(int *)arg); /* checked available by main */
    for (long i = 0; i < rounds; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&ball, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3) rounds = atol(argv[3]);
    else if (argc == 2) rounds = atol(argv[1]);
    /* both CPUs must be ours: two spinning threads on one CPU would take a
     * scheduler time slice per round */
    cpu_set_t allowed;
    if (rounds <= 0 || a == b || sched_getaffinity(0, sizeof allowed, &allowed) != 0 || a < 0 || b < 0 ||
        a >= CPU_SETSIZE || b >= CPU_SETSIZE || !CPU_ISSET(a, &allowed) || !CPU_ISSET(b, &allowed) || pin(a) != 0) {
        fprintf(stderr, "usage: core_latency [CPU_A CPU_B] [ROUNDS]: two different CPUs this process may use\n");
        return 2;
    }
    pthread_t other;
    if (pthread_create(&other, NULL, answer, &b) != 0) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < rounds; i++) {
        atomic_store_explicit(&ball, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 2) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(other, NULL);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)rounds;
    printf("{\"cpu_a\":%d,\"cpu_b\":%d,\"c2c_ns\":%.1f}\n", a, b, ns);
    return 0;
}
