#define _GNU_SOURCE
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include "CWGShim_io.h"

#include <stddef.h>
#define SAME(a, b, f) (offsetof(struct a, f) == offsetof(struct b, f))
_Static_assert(sizeof(struct CWGShim_msghdr) == sizeof(struct msghdr) && SAME(CWGShim_msghdr, msghdr, msg_name) &&
               SAME(CWGShim_msghdr, msghdr, msg_namelen) && SAME(CWGShim_msghdr, msghdr, msg_iov) &&
               SAME(CWGShim_msghdr, msghdr, msg_iovlen) && SAME(CWGShim_msghdr, msghdr, msg_control) &&
               SAME(CWGShim_msghdr, msghdr, msg_controllen) && SAME(CWGShim_msghdr, msghdr, msg_flags),
               "msghdr layout");
_Static_assert(sizeof(struct CWGShim_mmsghdr) == sizeof(struct mmsghdr) && SAME(CWGShim_mmsghdr, mmsghdr, msg_len),
               "mmsghdr layout");
/* TUN_F_USO4/6 (Linux 6.2) may be missing from older headers: the values are the uapi's. */
_Static_assert(CWGShim_TUN_F_TSO6 == TUN_F_TSO6 && CWGShim_TUN_F_CSUM == TUN_F_CSUM, "TUN_F_* values");

int CWGShim_tun_set_iff(int fd, const char *name, int vnet_hdr, char *name_out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) return -1;
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    name_out[IFNAMSIZ - 1] = 0;
    return 0;
}

int CWGShim_tun_get_vnet_hdr(int fd, int *vnet_hdr) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -1;
    *vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
    return 0;
}

int CWGShim_tun_set_vnet_hdr_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }
int CWGShim_tun_set_offload(int fd, unsigned int flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }

const int CWGShim_MSG_WAITFORONE = MSG_WAITFORONE;
const int CWGShim_MSG_TRUNC = MSG_TRUNC;

int CWGShim_recvmmsg(int fd, struct CWGShim_mmsghdr *v, unsigned int n, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)v, n, flags, NULL);
}
int CWGShim_sendmmsg(int fd, struct CWGShim_mmsghdr *v, unsigned int n, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)v, n, flags);
}

size_t CWGShim_udp_control_space(void) { return CMSG_SPACE(sizeof(int)); }

size_t CWGShim_put_udp_segment(void *control, size_t cap, uint16_t size) {
    if (cap < CMSG_SPACE(sizeof size)) return 0;
    memset(control, 0, CMSG_SPACE(sizeof size));
    struct cmsghdr *c = control;
    c->cmsg_level = CWGShim_SOL_UDP;
    c->cmsg_type = CWGShim_UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof size);
    memcpy(CMSG_DATA(c), &size, sizeof size);
    return CMSG_SPACE(sizeof size);
}

int CWGShim_udp_gro_size(const struct CWGShim_msghdr *m) {
    const struct msghdr *msg = (const struct msghdr *)m;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == CWGShim_SOL_UDP && c->cmsg_type == CWGShim_UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size;
            memcpy(&size, CMSG_DATA(c), sizeof size);
            return size;
        }
    }
    return 0;
}
