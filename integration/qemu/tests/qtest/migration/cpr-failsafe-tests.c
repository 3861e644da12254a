/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QTest cases for fail-safe cpr-exec (a QEMU built with libcprstate):
 * pre-flight refuses a target that cannot run while the VM still runs,
 * and a new QEMU whose incoming migration fails hands the VM back to
 * the previous one.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "migration/framework.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"
#include "qobject/qdict.h"

static char *tmpfs;

#define FAILSAFE_OPTS "-machine aux-ram-share=on -nodefaults"

/* query-cpr-rollback exists only in a QEMU built with libcprstate. */
static bool failsafe_built_in(QTestState *who)
{
    QDict *rsp = qtest_qmp(who, "{ 'execute': 'query-cpr-rollback' }");
    bool found = qdict_haskey(rsp, "return");

    qobject_unref(rsp);
    return found;
}

static QDict *rollback_info(QTestState *who)
{
    return qtest_qmp_assert_success_ref(who,
                                        "{ 'execute': 'query-cpr-rollback' }");
}

static void assert_running(QTestState *who)
{
    QDict *rsp = qtest_qmp_assert_success_ref(who,
                                              "{ 'execute': 'query-status' }");

    g_assert_true(qdict_get_bool(rsp, "running"));
    qobject_unref(rsp);
}

static void wait_for_status(QTestState *who, const char *want)
{
    QDict *rsp, *data;
    bool done;

    do {
        rsp = qtest_qmp_eventwait_ref(who, "MIGRATION");
        data = qdict_get_qdict(rsp, "data");
        done = !strcmp(qdict_get_str(data, "status"), want);
        qobject_unref(rsp);
    } while (!done);
}

/*
 * The source's own command line as the next QEMU's: the binary of the
 * destination, -incoming defer, then every word of the source's arguments
 * except "-device @drop".
 */
static void set_exec_command(QTestState *who, MigrateCommon *args,
                             const char *drop)
{
    g_autofree char *from_args = NULL;
    g_autofree char *to_args = NULL;
    g_autofree char *full = NULL;
    g_auto(GStrv) words = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int i;

    g_assert_false(args->start.hide_stderr);
    g_assert_cmpint(migrate_args(&from_args, &to_args, "defer",
                                 &args->start), ==, 0);
    full = qtest_qemu_args(from_args);
    words = g_strsplit_set(full, " ", -1);

    g_ptr_array_add(argv,
                    (char *)qtest_qemu_binary(migration_get_env()->qemu_dst));
    g_ptr_array_add(argv, (char *)"-incoming");
    g_ptr_array_add(argv, (char *)"defer");
    for (i = 0; words[i]; i++) {
        if (!*words[i]) {
            continue;
        }
        if (drop && words[i + 1] && !strcmp(words[i], "-device") &&
            !strcmp(words[i + 1], drop)) {
            i++;
            continue;
        }
        g_ptr_array_add(argv, words[i]);
    }
    g_ptr_array_add(argv, NULL);
    migrate_set_parameter_strv(who, "cpr-exec-command",
                               (char **)argv->pdata);
}

static void migrate_incoming_file(QTestState *who, const char *filename)
{
    qtest_qmp_assert_success(who, "{ 'execute': 'migrate-incoming',"
                             "  'arguments': { "
                             "      'channels': [ { 'channel-type': 'main',"
                             "      'addr': { 'transport': 'file',"
                             "                'filename': %s,"
                             "                'offset': 0  } } ] } }",
                             filename);
}

/*
 * The program of cpr-exec-command does not exist: migrate fails at once,
 * before the VM stops, and the VM runs on.
 */
static void test_exec_preflight_refused(char *name, MigrateCommon *args)
{
    g_autofree char *uri = g_strdup_printf("file:%s/%s", tmpfs,
                                           FILE_TEST_FILENAME);
    g_autofree char *missing = g_strdup_printf("%s/no-such-qemu", tmpfs);
    g_autofree char *serial = g_strdup_printf("%s/src_serial", tmpfs);
    char *argv[] = { missing, (char *)"-incoming", (char *)"defer", NULL };
    QTestState *from;
    QDict *rsp;

    args->start.only_source = true;
    args->start.opts_source = FAILSAFE_OPTS;
    args->start.mem_type = MEM_TYPE_MEMFD;
    if (migrate_start(&from, NULL, "defer", &args->start)) {
        return;
    }
    if (!failsafe_built_in(from)) {
        g_test_skip("QEMU built without libcprstate");
        qtest_quit(from);
        return;
    }
    migrate_set_parameter_str(from, "mode", "cpr-exec");
    migrate_set_parameter_strv(from, "cpr-exec-command", argv);
    wait_for_serial("src_serial");

    rsp = qtest_qmp(from, "{ 'execute': 'migrate', 'arguments': "
                    "{ 'uri': %s } }", uri);
    g_assert_true(qdict_haskey(rsp, "error"));
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"), "cannot be run"));
    qobject_unref(rsp);

    assert_running(from);
    rsp = rollback_info(from);
    g_assert_false(qdict_get_bool(rsp, "rolled-back"));
    qobject_unref(rsp);
    /* The guest still writes to its serial port. */
    wait_for_serial("src_serial");
    qtest_quit(from);
    unlink(serial);
}

/*
 * The next QEMU lacks a device of the source, so its incoming migration
 * fails after the exec: it hands the state back, and the previous QEMU
 * (same pid, same RAM) waits again for the migration stream, loads it,
 * runs the guest, and says what failed.
 */
static void test_exec_rollback(char *name, MigrateCommon *args)
{
    g_autofree char *uri = g_strdup_printf("file:%s/%s", tmpfs,
                                           FILE_TEST_FILENAME);
    g_autofree char *filename = g_strdup_printf("%s/%s", tmpfs,
                                                FILE_TEST_FILENAME);
    QTestState *from, *to, *back;
    QDict *rsp;

    args->start.only_source = true;
    args->start.opts_source = FAILSAFE_OPTS " -device pvpanic-pci";
    args->start.mem_type = MEM_TYPE_MEMFD;
    if (migrate_start(&from, NULL, "defer", &args->start)) {
        return;
    }
    if (!failsafe_built_in(from)) {
        g_test_skip("QEMU built without libcprstate");
        qtest_quit(from);
        return;
    }
    migrate_set_parameter_str(from, "mode", "cpr-exec");
    set_exec_command(from, args, "pvpanic-pci");
    migrate_set_capability(from, "events", true);
    wait_for_serial("src_serial");

    migrate_qmp(from, NULL, uri, NULL, "{}");
    wait_for_status(from, "completed");

    /* The new QEMU: its incoming migration fails (no pvpanic-pci). */
    to = qtest_init_after_exec(from);
    migrate_incoming_file(to, filename);

    /* The previous QEMU again, exec'd by the rollback. */
    back = qtest_init_after_exec(to);
    rsp = rollback_info(back);
    g_assert_true(qdict_get_bool(rsp, "rolled-back"));
    g_assert_cmpstr(qdict_get_str(rsp, "stage"), ==, "incoming");
    g_assert_nonnull(strstr(qdict_get_str(rsp, "error"), "load of migration"));
    qobject_unref(rsp);

    migrate_incoming_file(back, filename);
    wait_for_migration_complete(back);
    wait_for_resume(back, get_dst());
    assert_running(back);
    wait_for_serial("src_serial");

    qtest_quit(to);
    /* The guest runs on, its RAM consistent. */
    migrate_end(from, back, true);
}

void migration_test_add_cpr_failsafe(MigrationTestEnv *env)
{
    tmpfs = env->tmpfs;

    if (!env->full_set) {
        return;
    }

    if (env->has_kvm) {
        migration_test_add("/migration/mode/exec/preflight-refused",
                           test_exec_preflight_refused);
        migration_test_add("/migration/mode/exec/rollback",
                           test_exec_rollback);
    }
}
