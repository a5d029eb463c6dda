#ifndef CWGSHIM_IO_H
#define CWGSHIM_IO_H
/* Packet I/O for the built-in data plane (io.c): the TUN ioctls (ioctl is
 * variadic, struct ifreq a union), recvmmsg/sendmmsg (struct mmsghdr needs
 * _GNU_SOURCE) and the UDP_SEGMENT/UDP_GRO control messages (CMSG_* are
 * function-like macros). No policy lives here. */
#include <stddef.h>
#include <stdint.h>
/* No <sys/socket.h> here: through this module it would hide Glibc's own
 * SOCK_* constants from Swift files that do not import CWGShim. */

/* TUNSETOFFLOAD flags (linux/if_tun.h). */
enum {
    CWGShim_TUN_F_CSUM = 0x01, CWGShim_TUN_F_TSO4 = 0x02, CWGShim_TUN_F_TSO6 = 0x04,
    CWGShim_TUN_F_TSO_ECN = 0x08, CWGShim_TUN_F_UFO = 0x10,
    CWGShim_TUN_F_USO4 = 0x20, CWGShim_TUN_F_USO6 = 0x40,
};

/* TUNSETIFF with IFF_TUN|IFF_NO_PI (|IFF_VNET_HDR when vnet_hdr) on an open
 * /dev/net/tun; the kernel's name for the device goes to name_out (16 bytes). */
int CWGShim_tun_set_iff(int fd, const char *name, int vnet_hdr, char *name_out);
/* TUNGETIFF: the interface flags into *flags; *vnet_hdr is 1 when IFF_VNET_HDR is set. */
int CWGShim_tun_get_vnet_hdr(int fd, int *vnet_hdr);
/* TUNSETVNETHDRSZ. */
int CWGShim_tun_set_vnet_hdr_size(int fd, int size);
/* TUNSETOFFLOAD with the TUN_F_* flags. */
int CWGShim_tun_set_offload(int fd, unsigned int flags);

/* UDP offloads (linux/udp.h). */
enum { CWGShim_SOL_UDP = 17, CWGShim_UDP_SEGMENT = 103, CWGShim_UDP_GRO = 104 };
/* recvmmsg flag: block for the first message only; the truncation flag. */
extern const int CWGShim_MSG_WAITFORONE;
extern const int CWGShim_MSG_TRUNC;

/* struct msghdr and struct mmsghdr, laid out the same (io.c checks). */
struct CWGShim_msghdr {
    void *msg_name;
    unsigned int msg_namelen;
    void *msg_iov;           /* struct iovec * */
    size_t msg_iovlen;
    void *msg_control;
    size_t msg_controllen;
    int msg_flags;
};
struct CWGShim_mmsghdr {
    struct CWGShim_msghdr msg_hdr;
    unsigned int msg_len;
};
/* recvmmsg(fd, v, n, flags, NULL). */
int CWGShim_recvmmsg(int fd, struct CWGShim_mmsghdr *v, unsigned int n, int flags);
/* sendmmsg(fd, v, n, flags). */
int CWGShim_sendmmsg(int fd, struct CWGShim_mmsghdr *v, unsigned int n, int flags);
/* Control room one message needs for a UDP_SEGMENT or UDP_GRO message. */
size_t CWGShim_udp_control_space(void);
/* Writes a UDP_SEGMENT control message carrying size into control (cap
 * bytes); returns its length, or 0 when cap is too small. */
size_t CWGShim_put_udp_segment(void *control, size_t cap, uint16_t size);
/* The segment size of a UDP_GRO control message in msg, or 0 when there is none. */
int CWGShim_udp_gro_size(const struct CWGShim_msghdr *msg);

#endif
