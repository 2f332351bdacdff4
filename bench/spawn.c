/*
 * Run one command and write what the kernel charged it to a file: user and sys CPU seconds, peak
 * RSS, exit status, wall seconds.
 *
 * Why not just fork from Python: at exec the kernel keeps the old address space's RSS high-water
 * mark in the new program's ru_maxrss, so a child spawned by the (tens of MiB) benchmark process
 * would report at least that much even if it is ss using 4 MiB. This launcher is tiny, so the
 * inherited floor is about 1 MiB. bench.measure compiles it with cc on first use.
 *
 * usage: spawn RESULT_FILE COMMAND [ARG...]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s RESULT_FILE COMMAND [ARG...]\n", argv[0]);
        return 125;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t launcher = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        return 125;
    }
    if (pid == 0) {
        /* If the harness kills us (Ctrl-C), the measured command must not live on. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != launcher)
            _exit(125);
        execvp(argv[2], argv + 2);
        perror("spawn: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("spawn: wait4");
        return 125;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) {
        perror("spawn: result file");
        return 125;
    }
    /* ru_maxrss is in KiB on Linux. */
    fprintf(out, "%ld.%06ld %ld.%06ld %ld %d %.6f\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss, status, wall);
    fclose(out);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
