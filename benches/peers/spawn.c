/* Runs one command and reports its whole-process wall time and rusage, for the peer benchmarks
 * (benches/peers/run.sh builds it with `gcc -O2 -static`).
 *
 *     spawn OUTPUT_FILE TIMEOUT_SECONDS PROGRAM [ARGS...]
 *
 * The program runs with stdin from /dev/null and stdout + stderr into OUTPUT_FILE; one line goes
 * to this process's stdout: "wall_ns maxrss_kib user_us sys_us exit_status". A program still
 * running after TIMEOUT_SECONDS is killed (exit status 137), so that a hung client cannot hang
 * the benchmark.
 *
 * Why a C program: Linux's ru_maxrss of an exec'd child includes the peak RSS of the process
 * image it replaced (exec records the old mm's high-water mark), and with posix_spawn that image
 * is the parent's. Spawned from Python, every child would show Python's ~16 MiB. This launcher
 * is static and tiny, so what it adds to the reading is well under a MiB (the `true` row of the
 * benchmark shows how much).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile pid_t child;

static void on_alarm(int sig) {
    (void)sig;
    if (child > 0) kill(child, SIGKILL);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawn OUTPUT_FILE TIMEOUT_SECONDS PROGRAM [ARGS...]\n");
        return 2;
    }
    unsigned timeout = (unsigned)atoi(argv[2]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    struct timespec t0, t1;
    pid_t pid;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = posix_spawn(&pid, argv[3], &fa, NULL, &argv[3], environ);
    if (err != 0) {
        fprintf(stderr, "spawn: cannot start %s (error %d)\n", argv[3], err);
        return 2;
    }
    child = pid;
    signal(SIGALRM, on_alarm);
    alarm(timeout);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("spawn: wait4");
            return 2;
        }
    }
    alarm(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%lld %ld %lld %lld %d\n", wall, ru.ru_maxrss,
           (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, code);
    return 0;
}
