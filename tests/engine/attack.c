/* Attacks a hostile guest root would try, for tests/engine/test_escape.py.
 *
 * Built static (cc -static -O1 -Wall -o attack attack.c) and copied into a running guest. Each
 * subcommand makes its system call(s) with harmless arguments and prints one line per call:
 * "NAME: ok" when the call succeeded, "NAME: errno=N" when it failed. The program exits 0 unless
 * it is killed (x32 and i386 expect to be killed by SIGSYS).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One line for one call: "name: ok" or "name: errno=N". Returns whether it worked. */
static int report(const char *name, long result)
{
    if (result < 0) {
        printf("%s: errno=%d\n", name, errno);
        fflush(stdout);
        return 0;
    }
    printf("%s: ok\n", name);
    fflush(stdout);
    return 1;
}

/* ---- keys ---- */

static void do_keyctl(int argc, char **argv)
{
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

static void do_add_key(int argc, char **argv)
{
    long key = syscall(SYS_add_key, "user", "attack-test", "x", 1, KEY_SPEC_SESSION_KEYRING);
    report("add_key", key);
    if (key > 0)
        syscall(SYS_keyctl, KEYCTL_INVALIDATE, key); /* leave no key behind (run on the host too) */
}

static void do_request_key(int argc, char **argv)
{
    report("request_key", syscall(SYS_request_key, "user", "attack-test-absent", NULL, 0));
}

/* ---- the kernel itself ---- */

/* Zero segments with flags 0 would unload a staged kexec kernel: an unknown flag bit makes the kernel
 * refuse with EINVAL right after its permission check, so the call is harmless on a host too. */
static void do_kexec_load(int argc, char **argv)
{
    report("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8000UL));
}

static void do_kexec_file_load(int argc, char **argv)
{
    report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 1UL, "", 0x4UL /* NO_INITRAMFS */));
}

static void do_init_module(int argc, char **argv)
{
    static char image[16];
    report("init_module", syscall(SYS_init_module, image, 0UL, ""));
}

static void do_finit_module(int argc, char **argv)
{
    report("finit_module", syscall(SYS_finit_module, -1, "", 0));
}

/* Not "dummy": on a host with modules that would unload the dummy network driver. */
static void do_delete_module(int argc, char **argv)
{
    report("delete_module", syscall(SYS_delete_module, "attack_test_absent", O_NONBLOCK));
}

static void do_open_by_handle_at(int argc, char **argv)
{
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } handle = {.handle_bytes = 8, .handle_type = 1};
    int root = open("/", O_RDONLY | O_DIRECTORY);
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, root, &handle, O_RDONLY));
}

static void do_bpf(int argc, char **argv)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    report("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
}

static void do_perf_event_open(int argc, char **argv)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    report("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL));
}

static void do_userfaultfd(int argc, char **argv)
{
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
}

static void do_io_uring_setup(int argc, char **argv)
{
    static unsigned char params[120]; /* struct io_uring_params, zeroed */
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, params));
}

static void do_swapon(int argc, char **argv)
{
    report("swapon", syscall(SYS_swapon, "/nonexistent-swap", 0));
}

static void do_swapoff(int argc, char **argv)
{
    report("swapoff", syscall(SYS_swapoff, "/nonexistent-swap"));
}

static void do_acct(int argc, char **argv)
{
    report("acct", syscall(SYS_acct, NULL));
}

static void do_quotactl(int argc, char **argv)
{
    report("quotactl", syscall(SYS_quotactl, QCMD(Q_SYNC, USRQUOTA), NULL, 0, NULL));
}

static void do_syslog(int argc, char **argv)
{
    report("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
}

/* ---- the new mount API ---- */

static void do_fsopen(int argc, char **argv)
{
    report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
}

static void do_open_tree(int argc, char **argv)
{
    report("open_tree", syscall(SYS_open_tree, AT_FDCWD, ".", 0));
}

static void do_mount_setattr(int argc, char **argv)
{
    uint64_t attr[4] = {0}; /* struct mount_attr */
    report("mount_setattr", syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, attr, sizeof attr));
}

static void do_move_mount(int argc, char **argv)
{
    report("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
}

static void do_fsmount(int argc, char **argv)
{
    report("fsmount", syscall(SYS_fsmount, -1, 0, 0));
}

static void do_fspick(int argc, char **argv)
{
    report("fspick", syscall(SYS_fspick, AT_FDCWD, "/", 0));
}

static void do_fsconfig(int argc, char **argv)
{
    report("fsconfig", syscall(SYS_fsconfig, -1, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0));
}

/* ---- user namespaces ---- */

static void do_userns_unshare(int argc, char **argv)
{
    report("userns_unshare", unshare(CLONE_NEWUSER));
}

/* Fork-like (no new stack): the child returns 0 and exits at once. */
static void do_userns_clone(int argc, char **argv)
{
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0UL, NULL, NULL, 0UL);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    report("userns_clone", pid);
}

static void do_clone3(int argc, char **argv)
{
    uint64_t args[8] = {0}; /* struct clone_args, CLONE_ARGS_SIZE_VER0 */
    args[0] = CLONE_NEWUSER; /* flags */
    args[4] = SIGCHLD;       /* exit_signal */
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    report("clone3", pid);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}

/* The class-4 attack: a user namespace in which we are "root", a cgroup namespace and a mount
 * namespace it owns, cgroup file systems mounted there, and our own limit raised. Prints each step,
 * then "userns_cgroup: ok" only when a pids.max was written. */
static void do_userns_cgroup(int argc, char **argv)
{
    char v2[64], v1[64], path[128];
    int wrote = 0;

    if (!report("userns_cgroup.unshare", unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP))) {
        report("userns_cgroup", -1);
        return;
    }
    report("userns_cgroup.setgroups", write_file("/proc/self/setgroups", "deny"));
    report("userns_cgroup.uid_map", write_file("/proc/self/uid_map", "0 0 1"));
    report("userns_cgroup.gid_map", write_file("/proc/self/gid_map", "0 0 1"));
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

    snprintf(v2, sizeof v2, "/tmp/attack-cg2-%d", getpid());
    snprintf(v1, sizeof v1, "/tmp/attack-pids-%d", getpid());
    mkdir(v2, 0700);
    mkdir(v1, 0700);
    if (report("userns_cgroup.mount_cgroup2", mount("none", v2, "cgroup2", 0, NULL))) {
        snprintf(path, sizeof path, "%s/pids.max", v2);
        if (access(path, F_OK) == 0)
            wrote |= report("userns_cgroup.cgroup2_pids_max", write_file(path, "max"));
        umount(v2);
    }
    if (report("userns_cgroup.mount_pids", mount("none", v1, "cgroup", 0, "pids"))) {
        snprintf(path, sizeof path, "%s/pids.max", v1);
        wrote |= report("userns_cgroup.pids_max", write_file(path, "max"));
        umount(v1);
    }
    rmdir(v2);
    rmdir(v1);
    if (wrote)
        report("userns_cgroup", 0);
    else {
        errno = EPERM;
        report("userns_cgroup", -1);
    }
}

/* ---- other ABIs: the filter must kill ---- */

static void do_x32(int argc, char **argv)
{
    report("x32", syscall(0x40000000 | SYS_getpid));
}

static void do_i386(int argc, char **argv)
{
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(20L /* i386 getpid */) : "memory", "r8", "r9", "r10", "r11");
    if (result < 0 && result > -4096) {
        errno = (int)-result;
        result = -1;
    }
    report("i386", result);
}

/* ---- terminals ---- */

static void do_tiocsti(int argc, char **argv)
{
    char c = 'X';
    report("tiocsti", ioctl(0, TIOCSTI, &c));
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (!report("tiocsti_open_tty", tty))
        return;
    report("tiocsti_tty", ioctl(tty, TIOCSTI, &c));
    close(tty);
}

/* ---- ptrace ---- */

static void do_ptrace_self_child(int argc, char **argv)
{
    pid_t child = fork();
    if (child == 0) {
        sleep(10);
        _exit(0);
    }
    long result = ptrace(PTRACE_ATTACH, child, NULL, NULL);
    if (result == 0) {
        waitpid(child, NULL, __WALL);
        ptrace(PTRACE_DETACH, child, NULL, NULL);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    report("ptrace_self_child", result);
}

static ssize_t read_whole(const char *path, char *buffer, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t used = 0;
    ssize_t n;
    while (used < size - 1 && (n = read(fd, buffer + used, size - 1 - used)) > 0)
        used += n;
    close(fd);
    buffer[used] = 0;
    return used;
}

static pid_t parent_of(pid_t pid)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (read_whole(path, text, sizeof text) <= 0)
        return 0;
    char *end = strrchr(text, ')'); /* the comm may hold spaces */
    int ppid = 0;
    if (end)
        sscanf(end + 2, "%*c %d", &ppid);
    return ppid;
}

static void comm_of(pid_t pid, char *comm, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    if (read_whole(path, comm, size) <= 0)
        snprintf(comm, size, "?");
    comm[strcspn(comm, "\n")] = 0;
}

/* Whether the NUL-separated block holds `secret`; the variable that holds it goes to `where`. */
static int holds(const char *block, ssize_t length, const char *secret, char *where, size_t size)
{
    for (ssize_t i = 0; i < length; i += strlen(block + i) + 1) {
        if (strstr(block + i, secret)) {
            snprintf(where, size, "%.*s", (int)strcspn(block + i, "="), block + i);
            return 1;
        }
    }
    return 0;
}

#define MAX_PIDS 4096

static volatile sig_atomic_t stopped;

static void on_stop(int signal)
{
    stopped = 1;
}

/* hunt SECONDS SECRET: watch every other process for SECONDS (or until SIGTERM); report environments
 * or command lines holding SECRET ("found ...") and every process we could attach to ("attached PID
 * COMM"), then "hunt: done" with the number of scans and of processes seen. */
static void do_hunt(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: attack hunt SECONDS SECRET\n");
        exit(2);
    }
    double seconds = atof(argv[2]);
    const char *secret = argv[3];
    static pid_t skip[64], attacked[MAX_PIDS], found[MAX_PIDS];
    int nskip = 0, nattacked = 0, nfound = 0, scans = 0;
    static char block[1 << 16];
    char path[64], comm[64], where[128];

    for (pid_t p = getpid(); p > 0 && nskip < 64; p = parent_of(p))
        skip[nskip++] = p;

    struct sigaction stop = {.sa_handler = on_stop};
    sigaction(SIGTERM, &stop, NULL); /* SIGTERM ends the hunt early, with its report */
    printf("hunt: pid=%d\n", getpid());
    fflush(stdout);

    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)seconds;
    do {
        DIR *proc = opendir("/proc");
        struct dirent *entry;
        pid_t parent = getppid();
        while (proc && (entry = readdir(proc))) {
            pid_t pid = atoi(entry->d_name);
            int mine = pid <= 0 || pid == parent;
            for (int i = 0; i < nskip && !mine; i++)
                mine = skip[i] == pid;
            if (mine)
                continue;
            int known = 0;
            for (int i = 0; i < nfound && !known; i++)
                known = found[i] == pid;
            if (!known) {
                static const char *const files[] = {"environ", "cmdline"};
                for (int f = 0; f < 2; f++) {
                    snprintf(path, sizeof path, "/proc/%d/%s", pid, files[f]);
                    ssize_t length = read_whole(path, block, sizeof block);
                    if (length > 0 && holds(block, length, secret, where, sizeof where) && nfound < MAX_PIDS) {
                        comm_of(pid, comm, sizeof comm);
                        printf("found %d %s %s %s\n", pid, comm, files[f], where);
                        fflush(stdout);
                        found[nfound++] = pid;
                        break;
                    }
                }
            }
            int tried = 0;
            for (int i = 0; i < nattacked && !tried; i++)
                tried = attacked[i] == pid;
            if (tried || nattacked >= MAX_PIDS)
                continue;
            attacked[nattacked++] = pid; /* attach to each process once, as early as we see it */
            comm_of(pid, comm, sizeof comm);
            if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) {
                waitpid(pid, NULL, __WALL);
                ptrace(PTRACE_DETACH, pid, NULL, NULL);
                printf("attached %d %s\n", pid, comm);
                fflush(stdout);
            }
        }
        if (proc)
            closedir(proc);
        scans++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!stopped && (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec)));
    printf("hunt: done scans=%d seen=%d\n", scans, nattacked); /* every other process seen */
}

/* ---- the table ---- */

static const struct {
    const char *name;
    void (*run)(int argc, char **argv);
} commands[] = {
    {"keyctl", do_keyctl},
    {"add_key", do_add_key},
    {"request_key", do_request_key},
    {"kexec_load", do_kexec_load},
    {"kexec_file_load", do_kexec_file_load},
    {"init_module", do_init_module},
    {"finit_module", do_finit_module},
    {"delete_module", do_delete_module},
    {"open_by_handle_at", do_open_by_handle_at},
    {"bpf", do_bpf},
    {"perf_event_open", do_perf_event_open},
    {"userfaultfd", do_userfaultfd},
    {"io_uring_setup", do_io_uring_setup},
    {"swapon", do_swapon},
    {"swapoff", do_swapoff},
    {"acct", do_acct},
    {"quotactl", do_quotactl},
    {"syslog", do_syslog},
    {"fsopen", do_fsopen},
    {"open_tree", do_open_tree},
    {"mount_setattr", do_mount_setattr},
    {"move_mount", do_move_mount},
    {"fsmount", do_fsmount},
    {"fspick", do_fspick},
    {"fsconfig", do_fsconfig},
    {"userns_unshare", do_userns_unshare},
    {"userns_clone", do_userns_clone},
    {"clone3", do_clone3},
    {"userns_cgroup", do_userns_cgroup},
    {"x32", do_x32},
    {"i386", do_i386},
    {"tiocsti", do_tiocsti},
    {"ptrace_self_child", do_ptrace_self_child},
    {"hunt", do_hunt},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: attack COMMAND [ARGS]\ncommands:");
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            fprintf(stderr, " %s", commands[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    /* Several names at once run one after the other ("attack keyctl bpf ..."), except hunt. */
    for (int a = 1; a < argc; a++) {
        size_t i;
        for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(commands[i].name, argv[a]) == 0)
                break;
        if (i == sizeof commands / sizeof commands[0]) {
            fprintf(stderr, "attack: unknown command %s\n", argv[a]);
            return 2;
        }
        commands[i].run(argc, argv);
        if (commands[i].run == do_hunt)
            break;
    }
    return 0;
}
