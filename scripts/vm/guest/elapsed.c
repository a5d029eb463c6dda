/* elapsed FILE COMMAND [ARGS...]: runs COMMAND (standard streams inherited),
 * writes its wall time in microseconds to FILE, exits with its status.
 * The VM benchmark's timer: linked statically and not position-independent,
 * so under QEMU TCG its own start-up costs about 1 ms (GNU date, dynamic and
 * position-independent, costs about 35 ms there: QEMU translates the code of
 * every run again at its new random address). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    struct timespec a, b;
    int status;
    pid_t pid;
    FILE *out;
    if (argc < 3) {
        fprintf(stderr, "usage: elapsed FILE COMMAND [ARGS...]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid = fork();
    if (pid < 0) { perror("elapsed: fork"); return 2; }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0) { perror("elapsed: waitpid"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    out = fopen(argv[1], "w");
    if (!out) { perror(argv[1]); return 2; }
    fprintf(out, "%ld\n", (long)(b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000);
    fclose(out);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
