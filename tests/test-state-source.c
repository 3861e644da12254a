/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-state-source.c - what QEMU's cpr glue needs beyond load and save:
 * cprs_state_release_source() lets go of the state memfd (and mapping) or
 * the received bytes once the load is over, keeping every record and
 * payload; cprs_state_clear_ramblocks() lets RAM block maps be recorded
 * afresh before each save, after a load or a failed save.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define PAYLOAD_SIZE 20000u

/* The generation of a loaded state (cprs_state_generation() too). */
static uint64_t state_generation(const CprsState *s)
{
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);

    assert_int_equal(cprs_state_get_info(s, &si), 0);
    return si.generation;
}

static const char state_link[] = "/memfd:" CPRS_EXEC_STATE_NAME " (deleted)";

/* Number of open fds of this process, and how many are state memfds. */
static int count_fds(int *ret_state_fds)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    char path[300], link[300];
    ssize_t len;
    int n = 0, states = 0;

    assert_non_null(d);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        n++;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        len = readlink(path, link, sizeof(link) - 1);
        link[len > 0 ? len : 0] = '\0';
        states += !strcmp(link, state_link);
    }
    closedir(d);
    if (ret_state_fds) {
        *ret_state_fds = states;
    }
    return n - 1;       /* the directory's own fd */
}

typedef struct Guest {
    int ram;
    int rom;
    int efd;
    uint8_t payload[PAYLOAD_SIZE];
} Guest;

static int guest_memfd(const char *name, off_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    return fd;
}

/* A state as QEMU's glue builds it: fds, RAM maps, vfio, payloads. */
static CprsState *guest_state(Guest *g)
{
    CprsRamBlockInfo rb = CPRS_OPTS(CprsRamBlockInfo, .idstr = "pc.ram",
                                    .flags = CPRS_RAM_F_SHARED,
                                    .used_length = 1 << 20,
                                    .max_length = 1 << 20,
                                    .page_size = 4096);
    CprsGpaRange range = { 0, 1 << 20, 0 };
    CprsVfioDeviceInfo vd = CPRS_OPTS(CprsVfioDeviceInfo, .name = "hostdev0",
                                      .devid = 7, .ioas_id = 2,
                                      .hwpt_id = 3);
    CprsDevStateInfo raw = CPRS_OPTS(CprsDevStateInfo, .name = "cpu",
                                     .instance_id = 0, .version_id = 2);
    CprsDevStateInfo packed = CPRS_OPTS(CprsDevStateInfo, .name = "cpu",
                                        .instance_id = 1, .version_id = 2);
    CprsState *s;
    uint32_t i;

    for (i = 0; i < PAYLOAD_SIZE; i++) {
        g->payload[i] = (uint8_t)(i % 251 < 200 ? 0 : i);
    }
#ifdef CPRS_HAVE_ZSTD
    packed.flags = CPRS_DEVSTATE_F_ZSTD;
#endif
    g->ram = guest_memfd("ram0", 1 << 20);
    g->rom = guest_memfd("pc.rom", 1 << 16);
    g->efd = eventfd(0, EFD_CLOEXEC);
    assert_true(g->efd >= 0);
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, g->ram), 0);
    assert_int_equal(cprs_state_save_fd(s, "pc.rom", 0, g->rom), 0);
    assert_int_equal(cprs_state_save_fd(s, "irqfd", 3, g->efd), 0);
    assert_int_equal(cprs_state_save_ramblock(s, &rb, "ram0", 0, &range, 1),
                     0);
    assert_int_equal(cprs_state_save_vfio(s, &vd), 0);
    assert_int_equal(cprs_state_save_devstate(s, &raw, g->payload,
                                              PAYLOAD_SIZE), 0);
    assert_int_equal(cprs_state_save_devstate(s, &packed, g->payload,
                                              PAYLOAD_SIZE), 0);
    return s;
}

static void guest_close(Guest *g)
{
    close(g->ram);
    close(g->rom);
    close(g->efd);
}

/* Every record of guest_state() is in @s, whatever its source. */
static void check_records(CprsState *s, const Guest *g)
{
    CprsRamBlockInfo rb = CPRS_OPTS(CprsRamBlockInfo);
    CprsVfioDeviceInfo vd = CPRS_OPTS(CprsVfioDeviceInfo);
    const void *data;
    size_t size;
    uint32_t inst, version;
    int fd;

    assert_int_equal(cprs_state_fd_count(s), 3);
    assert_true(cprs_state_find_fd(s, "ram0", 0) >= 0);
    assert_true(cprs_state_find_fd(s, "irqfd", 3) >= 0);
    assert_int_equal(cprs_state_find_ramblock(s, "pc.ram", &rb, &fd), 0);
    assert_int_equal(fd, cprs_state_find_fd(s, "ram0", 0));
    assert_int_equal(rb.used_length, 1 << 20);
    assert_int_equal(cprs_state_find_vfio(s, "hostdev0", &vd), 0);
    assert_int_equal(vd.devid, 7);
    for (inst = 0; inst < 2; inst++) {
        assert_int_equal(cprs_state_find_devstate(s, "cpu", inst, &data,
                                                  &size, &version), 0);
        assert_int_equal(size, PAYLOAD_SIZE);
        assert_int_equal(version, 2);
        assert_memory_equal(data, g->payload, PAYLOAD_SIZE);
    }
}

/* cpr-exec: the memfd stays open until released, then is closed. */
static void test_release_exec(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld;
    Guest g;
    int fd, before, states, pass;

    (void)state;
    before = count_fds(NULL);
    for (pass = 0; pass < 2; pass++) {
        CprsSaveOpts so = CPRS_OPTS(CprsSaveOpts,
                                    .flags = pass ? CPRS_SAVE_F_LEGACY : 0);

        s = guest_state(&g);
        assert_int_equal(cprs_state_save_exec(s, &so, &d, &fd), 0);
        cprs_state_free(s);
        assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
        count_fds(&states);
        assert_int_equal(states, 1);
        /* Inherited without close-on-exec, given it back at load: a later
         * exec() does not inherit it even before it is released. */
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        if (!pass) {
            check_records(ld, &g);
        }
        assert_int_equal(cprs_state_release_source(ld), 0);
        assert_int_equal(fcntl(fd, F_GETFD), -1);
        count_fds(&states);
        assert_int_equal(states, 0);
        if (!pass) {
            /* Payloads were copied out of the mapping before it went. */
            check_records(ld, &g);
            assert_int_equal(state_generation(ld), 1);
        } else {
            assert_int_equal(cprs_state_fd_count(ld), 3);
        }
        /* Twice is harmless. */
        assert_int_equal(cprs_state_release_source(ld), 0);
        cprs_state_free(ld);
        guest_close(&g);
        assert_int_equal(count_fds(NULL), before);
    }
    assert_int_equal(cprs_state_release_source(NULL), 0);
}

typedef struct Sender {
    CprsState *s;
    int sock;
    int ret;
} Sender;

static void *send_thread(void *arg)
{
    Sender *sd = arg;
    CprsDiag d = CPRS_OPTS(CprsDiag);

    sd->ret = cprs_state_save_transfer(sd->s, sd->sock, NULL, &d);
    close(sd->sock);
    return NULL;
}

/* cpr-transfer: the received bytes go; records and payloads stay. */
static void test_release_transfer(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *ld;
    pthread_t th;
    Sender sd;
    Guest g;
    int sv[2], before = count_fds(NULL);

    (void)state;
    sd.s = guest_state(&g);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    sd.sock = sv[0];
    assert_int_equal(pthread_create(&th, NULL, send_thread, &sd), 0);
    assert_int_equal(cprs_state_load_transfer(sv[1], NULL, &d, &ld), 0);
    pthread_join(th, NULL);
    assert_int_equal(sd.ret, 0);
    close(sv[1]);
    assert_int_equal(cprs_state_release_source(ld), 0);
    check_records(ld, &g);
    cprs_state_close_fds(ld);
    cprs_state_free(ld);
    cprs_state_free(sd.s);
    guest_close(&g);
    assert_int_equal(count_fds(NULL), before);
}

/* Saving a released state writes every record again, next generation. */
static void test_resave_after_release(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s, *ld;
    Guest g;
    int fd;

    (void)state;
    s = guest_state(&g);
    assert_int_equal(cprs_state_save_exec(s, NULL, &d, &fd), 0);
    cprs_state_free(s);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
    assert_int_equal(cprs_state_release_source(ld), 0);
    assert_int_equal(cprs_state_save_exec(ld, NULL, &d, &fd), 0);
    cprs_state_free(ld);
    assert_int_equal(cprs_state_load_exec(NULL, &d, &ld), 0);
    assert_int_equal(state_generation(ld), 2);
    check_records(ld, &g);
    cprs_state_free(ld);
    guest_close(&g);
}

/* RAM block maps recorded afresh before each save. */
static void test_clear_ramblocks(void **state)
{
    CprsRamBlockInfo rb = CPRS_OPTS(CprsRamBlockInfo, .idstr = "pc.ram",
                                    .used_length = 1 << 20,
                                    .max_length = 1 << 20,
                                    .page_size = 4096);
    CprsRamBlockInfo got = CPRS_OPTS(CprsRamBlockInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsState *s;
    Guest g;
    int fd;

    (void)state;
    s = guest_state(&g);
    /* A second recording of the same block collides... */
    assert_int_equal(cprs_state_save_ramblock(s, &rb, "ram0", 0, NULL, 0),
                     -EEXIST);
    /* ...and a map whose fd record was deleted cannot be saved. */
    assert_int_equal(cprs_state_delete_fd(s, "ram0", 0), 0);
    assert_int_equal(cprs_state_save_exec(s, NULL, &d, &fd), -EINVAL);
    assert_null(getenv(CPRS_EXEC_STATE_NAME));
    cprs_state_clear_ramblocks(s);
    assert_int_equal(cprs_state_find_ramblock(s, "pc.ram", &got, &fd),
                     -ENOENT);
    /* fd records and the other lists are untouched. */
    assert_int_equal(cprs_state_fd_count(s), 2);
    assert_int_equal(cprs_state_save_fd(s, "ram0", 0, g.ram), 0);
    assert_int_equal(cprs_state_save_ramblock(s, &rb, "ram0", 0, NULL, 0),
                     0);
    assert_int_equal(cprs_state_find_ramblock(s, "pc.ram", &got, &fd), 0);
    assert_int_equal(fd, g.ram);
    /* Clearing twice, or an empty state, is harmless. */
    cprs_state_clear_ramblocks(s);
    cprs_state_clear_ramblocks(s);
    cprs_state_clear_ramblocks(NULL);
    assert_int_equal(cprs_state_save_exec(s, NULL, &d, &fd), 0);
    cprs_exec_unpersist(fd);
    cprs_state_free(s);
    guest_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_exec),
        cmocka_unit_test(test_release_transfer),
        cmocka_unit_test(test_resave_after_release),
        cmocka_unit_test(test_clear_ramblocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
