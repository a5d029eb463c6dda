#ifndef CWGSHIM_H
#define CWGSHIM_H
/* What Swift cannot import directly: _GNU_SOURCE-only calls and constants,
 * and netlink's function-like macros. No logic lives here. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Namespaces (need _GNU_SOURCE). */
extern const int CWGShim_CLONE_NEWUSER;
extern const int CWGShim_CLONE_NEWNET;
extern const int CWGShim_CLONE_NEWNS;
extern const int CWGShim_CLONE_NEWPID;
int CWGShim_unshare(int flags);
int CWGShim_setns(int fd, int nstype);

/* __nss_configure_lookup("hosts", services) (glibc's <nss.h>, not imported):
 * replaces the hosts line of /etc/nsswitch.conf for this process. */
int CWGShim_nss_configure_hosts(const char *services);

/* Netlink alignment macros. */
size_t CWGShim_NLMSG_ALIGN(size_t len);
size_t CWGShim_NLA_ALIGN(size_t len);
size_t CWGShim_NLMSG_HDRLEN(void);
size_t CWGShim_NLA_HDRLEN(void);

/* Children (spawn.c): fork + exec with the async-signal-safe steps between. */
enum {
    CWGShim_STAGE_PDEATHSIG = 1, CWGShim_STAGE_PGROUP = 2, CWGShim_STAGE_FDS = 3,
    CWGShim_STAGE_USERNS = 4, CWGShim_STAGE_CWD = 5, CWGShim_STAGE_EXEC = 6,
};
struct CWGShim_spawn_attr {
    const char *path;          /* searched in PATH when it has no '/' */
    char *const *argv;
    char *const *envp;         /* NULL: inherit */
    const int *fd_map;         /* child fd i = fd_map[i]; -1 closes it */
    int fd_count;              /* fds >= fd_count close on exec */
    int pdeathsig;             /* 0: none */
    int new_pgroup;
    int tty_fd;                /* >= 0: make the child's group the terminal's foreground */
    int new_userns;            /* unshare(CLONE_NEWUSER), map inner ids to the current ones */
    unsigned inner_uid, inner_gid;
    const char *cwd;           /* NULL: unchanged */
};
/* Returns the pid, or -1 with the failing stage and errno (the child is reaped). */
pid_t CWGShim_spawn(const struct CWGShim_spawn_attr *attr, int *stage, int *err);
/* fork(); the child gets PR_SET_PDEATHSIG(sig) and continues in the caller's code. */
pid_t CWGShim_fork_with_pdeathsig(int sig);
/* prctl(PR_SET_PDEATHSIG) (prctl is variadic). */
int CWGShim_set_pdeathsig(int sig);
/* pipe2 (needs _GNU_SOURCE). */
int CWGShim_pipe2(int fds[2], int flags);
/* signalfd(-1, mask, SFD_CLOEXEC|SFD_NONBLOCK) (sys/signalfd.h is not imported). */
#include <signal.h>
#include <sys/signalfd.h>
int CWGShim_signalfd(const sigset_t *mask);
/* open /dev/net/tun + TUNSETIFF (IFF_TUN or IFF_TAP, IFF_NO_PI) [+ TUNSETPERSIST]: ioctl is variadic
 * and struct ifreq is a union. Returns the fd or -1. */
int CWGShim_tun_open(const char *name, int tap, int persist);

#endif
