/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-list.c - "cprdump list": every process that holds a CPR state, one
 * line each (or one JSON object each): the QEMUs of a host that wait
 * between cpr-exec and migrate-incoming.
 *
 * The scan disturbs no one: for each /proc/PID it reads the fd links
 * (readlink) and the environment (QEMU_CPR_EXEC_STATE), and opens only
 * the fd whose link is the state memfd, as a new open file description,
 * which source.c refuses unless it is a regular file.  Processes we may
 * not look at are counted and said on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "proc.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_EXIT_ERROR

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;

    return a < b ? -1 : a > b;
}

/* The process ids under /proc, ascending; -errno on failure. */
static int list_pids(int **ret_pids, size_t *ret_n)
{
    struct dirent *de;
    size_t n = 0, cap = 0;
    int *pids = NULL, *np, pid;
    DIR *dir = opendir("/proc");

    if (!dir) {
        return -errno;
    }
    while ((de = readdir(dir)) != NULL) {
        if (parse_fd_number(de->d_name, &pid) || !pid) {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            np = realloc(pids, cap * sizeof(*pids));
            if (!np) {
                free(pids);
                closedir(dir);
                return -ENOMEM;
            }
            pids = np;
        }
        pids[n++] = pid;
    }
    closedir(dir);
    qsort(pids, n, sizeof(*pids), cmp_int);
    *ret_pids = pids;
    *ret_n = n;
    return 0;
}

/* /proc/PID/comm, as the kernel gives it (up to 15 bytes). */
static void comm_of(int pid, char *buf, size_t size)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    buf[0] = '\0';
    f = fopen(path, "re");
    if (f) {
        if (!fgets(buf, (int)size, f)) {
            buf[0] = '\0';
        }
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
}

/*
 * One holder: a text line or a JSON object; returns its exit code, or -1
 * when the process let go of its state (or exited) meanwhile.
 */
static int list_one(const Options *o, const ProcState *ps, Dump *d,
                    Json *j)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    char path[64], comm[64];
    const char *verdict, *format;
    bool have;
    Source s;
    int ret;

    comm_of(ps->pid, comm, sizeof(comm));
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", ps->pid, ps->fd);
    ret = source_load(path, -1, o, &s);
    if (ret == -ENOENT || ret == -ESRCH) {
        source_free(&s);
        return -1;
    }
    if (!ret) {
        ret = source_verify(&s, &diag);
    }
    verdict = !ret ? "valid" : ret == -EPROTONOSUPPORT ? "unsupported" :
              ret == -EBADMSG || ret == -E2BIG ? "invalid" : "error";
    have = s.reader || s.legacy;
    format = !have ? NULL : s.reader ? "arena" : "legacy";
    if (o->json) {
        json_obj(j, NULL);
        json_i64(j, "pid", ps->pid);
        json_str(j, "command", comm);
        json_i64(j, "fd", ps->fd);
        json_str(j, "found-by", ps->env_is_state ? "environment" : "link");
        json_str(j, "format", format);
        json_str(j, "mode", have ? mode_name(src_mode(&s)) : NULL);
        json_u64(j, "size", s.size);
        json_u64(j, "fds", have ? src_fd_count(&s) : 0);
        json_u64(j, "ram-blocks", s.reader ?
                 cprs_reader_ramblock_count(s.reader) : 0);
        json_u64(j, "devices", have ? src_vfio_count(&s) : 0);
        json_diag(j, "verification", ret, &diag);
        json_obj_end(j);
    } else {
        fprintf(d->out, "%7d %4d %-6s %-12s %10zu %5u %5u %4u %-11s %s\n",
                ps->pid, ps->fd, have ? format : "-",
                have ? mode_name(src_mode(&s)) : "-", s.size,
                have ? src_fd_count(&s) : 0,
                s.reader ? cprs_reader_ramblock_count(s.reader) : 0,
                have ? src_vfio_count(&s) : 0, verdict, tx(comm));
    }
    source_free(&s);
    return cprdump_exit_code(ret);
}

static int list_run(const Options *o)
{
    size_t i, n = 0, held = 0, denied = 0;
    int *pids = NULL, ret, exit = CPRDUMP_EXIT_OK;
    ProcState ps;
    Dump d;
    Json j;

    if (o->nargs) {
        return usage_error(USAGE, "list takes no operand");
    }
    ret = list_pids(&pids, &n);
    if (ret) {
        cprdump_err("cannot read /proc: %s", strerror(-ret));
        return CPRDUMP_EXIT_ERROR;
    }
    if (!dump_begin(&d)) {
        free(pids);
        return CPRDUMP_EXIT_ERROR;
    }
    if (o->json) {
        json_begin(&j, d.out);
        json_preamble(&j, "list");
        json_arr(&j, "processes");
    } else {
        fprintf(d.out, "%7s %4s %-6s %-12s %10s %5s %5s %4s %-11s %s\n",
                "PID", "FD", "FORMAT", "MODE", "BYTES", "FDS", "RAM", "DEV",
                "VERDICT", "COMMAND");
    }
    for (i = 0; i < n; i++) {
        ret = proc_find_state(pids[i], &ps);
        if (ret == -EACCES || ret == -EPERM) {
            denied++;
        }
        if (ret) {
            continue;
        }
        ret = list_one(o, &ps, &d, &j);
        if (ret >= 0) {
            held++;
            exit = cprdump_exit_merge(exit, ret);
        }
    }
    free(pids);
    if (o->json) {
        json_arr_end(&j);
        json_u64(&j, "not-inspected", denied);
        json_obj_end(&j);
        json_end(&j);
    }
    if (!dump_end(&d)) {
        return CPRDUMP_EXIT_ERROR;
    }
    if (!held) {
        cprdump_note("no process holds a CPR state");
    }
    if (denied) {
        cprdump_note("%zu process%s not inspected: no ptrace access (run as "
                     "their user, or with CAP_SYS_PTRACE)", denied,
                     denied == 1 ? "" : "es");
    }
    return exit;
}

const Command cmd_list = {
    .name = "list",
    .run = list_run,
    .options = OPT_JSON | OPT_LENIENT | OPT_QUIET | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json]",
    .summary = "every process holding CPR state, one line each",
};
