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

#include <stddef.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>

#if defined(__x86_64__)
#define WGNS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define WGNS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

int CWGShim_deny_tty_injection(void) {
#ifndef WGNS_AUDIT_ARCH
    errno = ENOSYS;
    return -1;
#else
    /* The low 32 bits of ioctl's second argument (the kernel reads the
     * request as an unsigned int). Little-endian on both architectures. */
    enum { ARG1 = offsetof(struct seccomp_data, args) + sizeof(__u64) };
    struct sock_filter f[] = {
#if defined(__x86_64__)
        /*  0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 3, 0),      /* 5 : 2 */
        /*  2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 9),        /* 3 : kill */
        /* i386: ioctl is 54. */
        /*  3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /*  4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 54, 4, 8),                      /* check : allow */
        /* x86_64, and x32 (its numbers carry bit 30; 514 was x32's own ioctl). */
        /*  5 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /*  6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 2, 0),              /* check : 7 */
        /*  7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40000000 | __NR_ioctl, 1, 0), /* check : 8 */
        /*  8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40000000 | 514, 0, 4),        /* check : allow */
        /*  9 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG1),
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 3, 0),                 /* deny : 11 */
        /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 2, 1),               /* deny : allow */
#else
        /*  0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WGNS_AUDIT_ARCH, 0, 5),         /* 2 : kill */
        /*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /*  3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 4),              /* 4 : allow */
        /*  4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG1),
        /*  5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 3, 0),                 /* deny : 6 */
        /*  6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 2, 1),               /* deny : allow */
#endif
        /* kill  */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        /* allow */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* deny  */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#endif
}

int CWGShim_set_undumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
int CWGShim_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0); }

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

/* Parent side of a report pipe: 1 when the child reported (stage, errno)
 * into got (the child is then reaped), 0 when the pipe closed on exec. */
static int read_report(int fd, pid_t pid, int got[2]) {
    ssize_t n;
    do { n = read(fd, got, 2 * sizeof(int)); } while (n < 0 && errno == EINTR);
    close(fd);
    if (n != (ssize_t)(2 * sizeof(int))) return 0;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return 1;
}

/* Every handler back to its default: what a child starts with, whether it
 * execs or (a fork) continues in the caller's code. */
static void default_handlers(void) {
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
}

/* Child side; reports (stage, errno) on report_fd and exits 127 on failure. */
static void child(const struct CWGShim_spawn_attr *a, pid_t parent, int report_fd) {
    int stage = 0;
    sigset_t all;
    sigemptyset(&all);
    default_handlers();

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
    stage = CWGShim_STAGE_CAPS;
    /* Root's exec takes its capabilities from the bounding set: without
     * these, no mount or unmount (the host's /proc lies under this one),
     * no setns (another network namespace), no ptrace beyond its own uid's
     * rules. */
    if (a->drop_admin_caps && (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0
                               || prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) < 0)) goto fail;
    stage = CWGShim_STAGE_SECCOMP;
    if (a->deny_tty_injection && CWGShim_deny_tty_injection() < 0) goto fail;
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
    if (read_report(report[0], pid, got)) {
        *stage_out = got[0];
        *errno_out = got[1];
        errno = got[1];
        return -1;
    }
    *stage_out = 0;
    *errno_out = 0;
    return pid;
}

static pid_t fork_with_pdeathsig(int sig, int undumpable);

pid_t CWGShim_fork_with_pdeathsig(int sig) { return fork_with_pdeathsig(sig, 0); }
pid_t CWGShim_fork_undumpable_with_pdeathsig(int sig) { return fork_with_pdeathsig(sig, 1); }

static pid_t fork_with_pdeathsig(int sig, int undumpable) {
    sigset_t all, old, none;
    sigfillset(&all);
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (undumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) _exit(127);
        /* The signal state of an exec'd child (spawn's): default handlers,
         * nothing blocked. The child blocks what it waits for itself. */
        default_handlers();
        /* The death signal first, then the check: a parent that died in
         * between would otherwise go unnoticed. A parent outside our pid
         * namespace shows as ppid 0. */
        if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) < 0) _exit(127);
        pid_t pp = getppid();
        if (pp != parent && pp != 0) _exit(127);
        sigprocmask(SIG_SETMASK, &none, NULL);
        return 0;
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return pid;
}

int CWGShim_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

#include <sys/signalfd.h>
int CWGShim_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
int CWGShim_tun_open(const char *name, int tap, int persist) {
    return CWGShim_tun_open_pi(name, tap, tap, persist);
}

int CWGShim_tun_open_pi(const char *name, int tap, int no_pi, int persist) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | (no_pi ? IFF_NO_PI : 0);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (persist && ioctl(fd, TUNSETPERSIST, 1) < 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int CWGShim_tun_set_persist(int fd, int on) {
    return ioctl(fd, TUNSETPERSIST, on ? 1 : 0);
}

void *CWGShim_memmem(const void *haystack, size_t hlen, const void *needle, size_t nlen) {
    return memmem(haystack, hlen, needle, nlen);
}

/* ---- The job's sandbox: its pid 1 (see Sources/Tunnel/JobSandbox.swift). ---- */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>

static int send_fds(int sock, const char *text, const int *fds, int n) {
    char cbuf[CMSG_SPACE(sizeof(int) * 8)];
    if (n > 8) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (n > 0) {
        memset(cbuf, 0, sizeof cbuf);
        m.msg_control = cbuf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    ssize_t r;
    do { r = sendmsg(sock, &m, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int CWGShim_send_fds(int sock, const char *text, const int *fds, int count) {
    return send_fds(sock, text, fds, count);
}

ssize_t CWGShim_recv_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *count) {
    char cbuf[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    *count = 0;
    ssize_t r;
    do { r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *got = (int *)CMSG_DATA(c);
        for (int i = 0; i < n; i++) {
            if (*count < max_fds) fds[(*count)++] = got[i];
            else close(got[i]);
        }
    }
    return r;
}

/* Opens /proc/self/ns/NAME for each of `names`; -1 on the first failure. */
static int open_own_namespaces(const char *const *names, int n, int *out) {
    char path[64];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        out[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (out[i] < 0) { int e = errno; while (i-- > 0) close(out[i]); errno = e; return -1; }
    }
    return 0;
}

int CWGShim_send_own_namespaces(int sock, const char *text) {
    static const char *const names[] = { "user", "mnt", "net" };
    int fds[3];
    if (open_own_namespaces(names, 3, fds) < 0) return -1;
    int r = send_fds(sock, text, fds, 3);
    int e = errno;
    for (int i = 0; i < 3; i++) close(fds[i]);
    errno = e;
    return r;
}

static int shell_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 1;
}

static void fail_report(int report_fd, int stage) {
    int report[2] = { stage, errno };
    write_all(report_fd, (const char *)report, sizeof report);
    _exit(127);
}

static int mask_file(const char *path, const char *source) {
    unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (!source) { errno = EINVAL; return -1; }
    if (mount(source, path, NULL, MS_BIND, NULL) < 0) return -1;
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | ro, NULL);
}

/* Folders, directly under /tmp and the like, where servers that run
 * commands for their clients keep their sockets: only these are searched a
 * level down (a /tmp of thousands of folders would cost tens of ms). */
static int socket_folder(const char *name) {
    static const char *const prefixes[] = { "tmux-", ".X11-unix", ".ICE-unix", "emacs", "screen", "ssh-", "vscode", "jupyter" };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* Masks the sockets under `dir`, `depth` levels down (readdir's d_type, no
 * stat per entry; below the first level only in socket_folder()s), at most
 * *budget of them. */
static int mask_sockets(const char *dir, int depth, const char *source, int *budget) {
    if (depth <= 0 || *budget <= 0) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    char path[4096];
    int r = 0;
    while (r == 0 && *budget > 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (lstat(path, &st) < 0) continue;
            type = S_ISSOCK(st.st_mode) ? DT_SOCK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        if (type == DT_SOCK && access(path, W_OK) == 0) {
            (*budget)--;
            if (mask_file(path, source) < 0 && errno != ENOENT) r = -1;
        } else if (type == DT_DIR && socket_folder(e->d_name)) {
            r = mask_sockets(path, depth - 1, source, budget);
        }
    }
    int e2 = errno;
    closedir(d);
    errno = e2;
    return r;
}

/* The sandbox's masks (see CWGShim_sandbox_attr): -1 with errno on the
 * first that fails. A working directory inside a masked folder is entered
 * again by name, so that it is the mask too. */
static int mask_paths(const struct CWGShim_sandbox_attr *sb) {
    for (int i = 0; i < sb->mask_count; i++) {
        const char *path = sb->mask[i];
        struct stat st;
        if (stat(path, &st) < 0) { if (errno == ENOENT) continue; return -1; }
        unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", path, "tmpfs", ro, "mode=0500,size=4k,nr_inodes=1") < 0) return -1;
        } else if (mask_file(path, sb->mask_source) < 0) {
            return -1;
        }
    }
    if (sb->mask_host_sockets) {
        static const char *const dirs[] = { "/tmp", "/var/tmp", "/dev/shm" };
        int budget = 1000;
        for (int i = 0; i < 3; i++) if (mask_sockets(dirs[i], 2, sb->mask_source, &budget) < 0) return -1;
    }
    if (sb->mask_count > 0) {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) && chdir(cwd) < 0) { if (chdir("/") < 0) return -1; }
    }
    return 0;
}

/* Pid 1 of the job's pid namespace. Never returns. */
static void sandbox_init(const struct CWGShim_spawn_attr *job, const struct CWGShim_sandbox_attr *sb, int report_fd) {
    /* The signals it passes on, and SIGCHLD: blocked, taken with sigwaitinfo. */
    sigset_t wait_set;
    sigemptyset(&wait_set);
    static const int passed[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM };
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) sigaddset(&wait_set, passed[i]);
    sigaddset(&wait_set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &wait_set, NULL);

    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) fail_report(report_fd, CWGShim_STAGE_PDEATHSIG);
    /* Undumpable, as its parent, makes /proc/self root's: writing its own
     * uid_map needs it to be ours for a moment (see below): its copy of
     * the caller's keys goes first. Without a user namespace of its own (a
     * hook's sandbox, NetAdmin's) it stays undumpable. */
    if (sb->nested_userns) {
        if (sb->before_dumpable) sb->before_dumpable();
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    /* Nothing of the parent's but the job's descriptors and the two channels. */
    for (int fd = 3; fd < 1024; fd++) {
        if (fd == report_fd || fd == sb->channel_fd) continue;
        int keep = 0;
        for (int i = 0; job && i < job->fd_count; i++) if (job->fd_map[i] == fd) keep = 1;
        if (!keep) close(fd);
    }

    /* A mount namespace of the namespace's user namespace: its own /proc
     * (this pid namespace's), without the control sockets' folder. */
    if (unshare(CLONE_NEWNS) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
    if (mask_paths(sb) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
    for (int i = 0; i < sb->detach_count; i++) {
        if (umount2(sb->detach[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
    }
    if (sb->nested_userns) {
        /* A user namespace of its own, owning a mount namespace of its own:
         * whatever its uid, it holds no capability over the namespaces that
         * hold the tunnel, and the mounts it inherits are locked (read-only
         * stays read-only, nothing hidden can be uncovered). */
        char line[64];
        uid_t outer_uid = geteuid();
        gid_t outer_gid = getegid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) fail_report(report_fd, CWGShim_STAGE_USERNS);
        if (write_file("/proc/self/setgroups", "deny") < 0) fail_report(report_fd, CWGShim_STAGE_USERNS);
        snprintf(line, sizeof line, "%u %u 1\n", sb->inner_uid, (unsigned)outer_uid);
        if (write_file("/proc/self/uid_map", line) < 0) fail_report(report_fd, CWGShim_STAGE_USERNS);
        snprintf(line, sizeof line, "%u %u 1\n", sb->inner_gid, (unsigned)outer_gid);
        if (write_file("/proc/self/gid_map", line) < 0) fail_report(report_fd, CWGShim_STAGE_USERNS);
    }
    /* Its memory is a copy of the namespace's pid 1, which read the keys:
     * nobody may ptrace it or read /proc/1/mem, root of the job included. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (sb->channel_fd >= 0) {
        static const char *const names[] = { "user", "mnt", "net", "pid" };
        int fds[4];
        if (open_own_namespaces(names, 4, fds) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
        if (send_fds(sb->channel_fd, sb->channel_text, fds, 4) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
        for (int i = 0; i < 4; i++) close(fds[i]);
        close(sb->channel_fd);
    }

    pid_t job_pid = -1;
    if (job) {
        int rep[2];
        if (pipe2(rep, O_CLOEXEC) < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
        job_pid = fork();
        if (job_pid == 0) {
            close(rep[0]);
            close(report_fd);
            child(job, 1, rep[1]);
        }
        if (job_pid < 0) fail_report(report_fd, CWGShim_STAGE_SANDBOX);
        close(rep[1]);
        int got[2];
        if (read_report(rep[0], job_pid, got)) {
            write_all(report_fd, (const char *)got, sizeof got);
            _exit(127);
        }
    }
    close(report_fd);
    /* It holds nothing now: not even the job's terminal. */
    for (int fd = 0; fd < 3; fd++) close(fd);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&wait_set, &si);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            if (job_pid > 0) kill(job_pid, sig);
            else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) _exit(0);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != job_pid) continue;
            /* The job ended: so does everything it left in here. */
            kill(-1, SIGKILL);
            while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
            _exit(shell_status(st));
        }
    }
}

pid_t CWGShim_spawn_sandboxed(const struct CWGShim_spawn_attr *job, const struct CWGShim_sandbox_attr *sb,
                              int *stage_out, int *errno_out) {
    *stage_out = CWGShim_STAGE_SANDBOX;
    int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own_pidns < 0) { *errno_out = errno; return -1; }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) { *errno_out = errno; close(own_pidns); return -1; }
    if (unshare(CLONE_NEWPID) < 0) {
        *errno_out = errno;
        close(own_pidns); close(report[0]); close(report[1]);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        close(own_pidns);
        sandbox_init(job, sb, report[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Later children of the caller go back into its own pid namespace. */
    int back = setns(own_pidns, CLONE_NEWPID);
    int back_errno = errno;
    close(own_pidns);
    close(report[1]);
    if (pid < 0 || back < 0) {
        if (pid > 0) { kill(pid, SIGKILL); while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {} }
        close(report[0]);
        *errno_out = pid < 0 ? fork_errno : back_errno;
        return -1;
    }
    int got[2];
    if (read_report(report[0], pid, got)) {
        *stage_out = got[0];
        *errno_out = got[1];
        errno = got[1];
        return -1;
    }
    *stage_out = 0;
    *errno_out = 0;
    return pid;
}
