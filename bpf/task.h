/* SPDX-License-Identifier: GPL-2.0-only */
/* The current task's syscall, its file descriptors, and socket inodes.
 * Included by noport.c. */
#ifndef TASK_H
#define TASK_H

#define THREAD_SIZE_X86_64 16384
#define NR_write 1
#define NR_writev 20
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_sendmmsg 307

/* Is the current task sending on sk, right now, in a syscall? Usually the
 * sender's own send call runs the transmit path; but a datagram held for
 * neighbour resolution (ARP, ND) leaves later from softirq, on whatever task
 * was running. So name the current task only if its syscall (from the user
 * registers at the top of its kernel stack) is a send whose fd is sk's socket. */
/* The user registers saved at the top of a task's kernel stack: the
 * syscall in progress (orig_ax) and its arguments. */
static __always_inline struct pt_regs *user_regs(struct task_struct *task)
{
	void *stack = BPF_CORE_READ(task, stack);

	return stack + THREAD_SIZE_X86_64 - sizeof(struct pt_regs);
}

/* The socket behind the current task's file descriptor fd, or NULL. For a
 * file that is not a socket the result is garbage that matches nothing. */
static __always_inline struct sock *fd_sock(struct task_struct *task, unsigned long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f;
	struct socket *sock;

	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd & 0xffffff]) || !f)
		return NULL;
	/* For a socket's file, private_data is its struct socket. */
	sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

static __always_inline bool sent_by_current(struct sock *sk)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pt_regs *regs = user_regs(task);
	unsigned long nr = BPF_CORE_READ(regs, orig_ax);

	if (nr != NR_write && nr != NR_writev && nr != NR_sendto && nr != NR_sendmsg && nr != NR_sendmmsg)
		return false;
	return fd_sock(task, BPF_CORE_READ(regs, di)) == sk;
}

/* The inode number of sk's socket, as in /proc/PID/fd -> socket:[ino];
 * 0 once the socket is closed (sock_orphan clears sk_socket). */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);

	if (!sock)
		return 0;
	/* struct socket_alloc { struct socket socket; struct inode vfs_inode; } */
	return BPF_CORE_READ(container_of(sock, struct socket_alloc, socket), vfs_inode.i_ino);
}

#endif
