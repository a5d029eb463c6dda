/* fork + exec for wgns's children. The code between fork and exec must be
 * async-signal-safe (the parent may have other threads), which Swift cannot
 * promise, so that short stretch lives here, as in swift-subprocess's own
 * C spawn helper. No policy: the caller decides every option. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "CWGShim.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int CWGShim_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

static int write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        s += w; n -= (size_t)w;
    }
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = write_all(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* Child side; reports (stage, errno) on report_fd and exits 127 on failure. */
static void child(const struct CWGShim_spawn_attr *a, pid_t parent, int report_fd) {
    int stage = 0;
    sigset_t all;
    sigemptyset(&all);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);

    stage = CWGShim_STAGE_PDEATHSIG;
    if (a->pdeathsig > 0) {
        if (prctl(PR_SET_PDEATHSIG, a->pdeathsig, 0, 0, 0) < 0) goto fail;
        /* A parent outside the child's pid namespace shows as ppid 0. */
        pid_t pp = getppid();
        if (pp != parent && pp != 0) _exit(127);
    }
    stage = CWGShim_STAGE_PGROUP;
    if (a->new_pgroup && setpgid(0, 0) < 0) goto fail;
    if (a->tty_fd >= 0) {
        /* SIGTTOU is still blocked (inherited mask), so this proceeds. */
        if (tcsetpgrp(a->tty_fd, getpid()) < 0) goto fail;
    }
    stage = CWGShim_STAGE_FDS;
    /* Move sources out of the way first, then into place. */
    int moved[64];
    if (a->fd_count > 64) { errno = EINVAL; goto fail; }
    for (int i = 0; i < a->fd_count; i++) {
        moved[i] = -1;
        if (a->fd_map[i] < 0) continue;
        moved[i] = fcntl(a->fd_map[i], F_DUPFD_CLOEXEC, 64 + a->fd_count);
        if (moved[i] < 0) goto fail;
    }
    for (int i = 0; i < a->fd_count; i++) {
        if (moved[i] < 0) { close(i); continue; }
        if (dup2(moved[i], i) < 0) goto fail;
    }
    /* Everything else closes on exec (the report pipe must live until then). */
    if (syscall(SYS_close_range, (unsigned)a->fd_count, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = a->fd_count; fd < 1024; fd++) {
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    stage = CWGShim_STAGE_USERNS;
    if (a->new_userns) {
        char line[64];
        uid_t outer_uid = geteuid();
        gid_t outer_gid = getegid();
        if (unshare(CLONE_NEWUSER) < 0) goto fail;
        if (write_file("/proc/self/setgroups", "deny") < 0) goto fail;
        snprintf(line, sizeof line, "%u %u 1\n", (unsigned)a->inner_uid, (unsigned)outer_uid);
        if (write_file("/proc/self/uid_map", line) < 0) goto fail;
        snprintf(line, sizeof line, "%u %u 1\n", (unsigned)a->inner_gid, (unsigned)outer_gid);
        if (write_file("/proc/self/gid_map", line) < 0) goto fail;
    }
    stage = CWGShim_STAGE_CWD;
    if (a->cwd && chdir(a->cwd) < 0) goto fail;
    stage = CWGShim_STAGE_EXEC;
    sigprocmask(SIG_SETMASK, &all, NULL);
    if (a->envp) execvpe(a->path, a->argv, a->envp);
    else execvp(a->path, a->argv);
fail:;
    int report[2] = { stage, errno };
    write_all(report_fd, (const char *)report, sizeof report);
    _exit(127);
}

pid_t CWGShim_spawn(const struct CWGShim_spawn_attr *a, int *stage_out, int *errno_out) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -1;
    sigset_t all, old;
    sigfillset(&all);
    /* No handler may run in the child before it resets them. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        child(a, parent, report[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) { close(report[0]); errno = fork_errno; *stage_out = 0; *errno_out = fork_errno; return -1; }
    int got[2];
    ssize_t n;
    do { n = read(report[0], got, sizeof got); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof got) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        *stage_out = got[0];
        *errno_out = got[1];
        errno = got[1];
        return -1;
    }
    *stage_out = 0;
    *errno_out = 0;
    return pid;
}

pid_t CWGShim_fork_with_pdeathsig(int sig) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* A parent outside our pid namespace shows as ppid 0. */
        pid_t pp = getppid();
        if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) < 0 || (pp != parent && pp != 0)) _exit(127);
    }
    return pid;
}

int CWGShim_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

#include <sys/signalfd.h>
int CWGShim_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
int CWGShim_tun_open(const char *name, int tap, int persist) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = tap ? (IFF_TAP | IFF_NO_PI) : IFF_TUN;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (persist && ioctl(fd, TUNSETPERSIST, 1) < 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
