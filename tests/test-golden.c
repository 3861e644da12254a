/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-golden.c - the golden arenas of format/vectors/: the recipes still
 * give the committed bytes; each vector opens, verifies and dumps exactly
 * to its .txt with cprdump; every truncation and every single-bit flip of
 * every vector is rejected, without a crash or a leak.
 */
#include <stdlib.h>
#include <sys/wait.h>

#include "golden-vectors.h"
#include "helpers.h"

static uint8_t *load_vector(const char *name, const char *ext, size_t *size)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s.%s", th_vectors_dir(), name, ext);
    return th_read_file(path, size);
}

/* Run cprdump with @args; capture stdout; return the exit status. */
static int run_cprdump(const char *args, char **ret_out, size_t *ret_len)
{
    char cmd[8192], *out = NULL;
    size_t len = 0, cap = 0, n;
    FILE *p;
    int status;

    snprintf(cmd, sizeof(cmd), "'%s/tools/cprdump' %s 2>/dev/null",
             th_build_root(), args);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            out = realloc(out, cap + 1);
            assert_non_null(out);
        }
        n = fread(out + len, 1, cap - len, p);
        if (!n) {
            break;
        }
        len += n;
    }
    out[len] = '\0';
    status = pclose(p);
    assert_true(WIFEXITED(status));
    *ret_out = out;
    *ret_len = len;
    return WEXITSTATUS(status);
}

/* The recipes produce the committed bytes (format stability). */
static void test_recipes_match(void **state)
{
    uint8_t *want;
    size_t i, size, want_size;
    void *got;

    (void)state;
    for (i = 0; i < golden_vector_count; i++) {
        assert_int_equal(golden_vectors[i].build(&got, &size), 0);
        want = load_vector(golden_vectors[i].name, "cprs", &want_size);
        if (size != want_size || memcmp(got, want, size)) {
            fail_msg("%s: the recipe no longer gives the committed bytes; "
                     "a wire change needs new vectors and a spec change",
                     golden_vectors[i].name);
        }
        free(want);
        free(got);
    }
}

static void test_dump_matches(void **state)
{
    char args[4096], *out;
    uint8_t *want;
    size_t i, len, want_size;

    (void)state;
    for (i = 0; i < golden_vector_count; i++) {
        snprintf(args, sizeof(args), "'%s/%s.cprs'", th_vectors_dir(),
                 golden_vectors[i].name);
        assert_int_equal(run_cprdump(args, &out, &len), 0);
        want = load_vector(golden_vectors[i].name, "txt", &want_size);
        if (len != want_size || memcmp(out, want, len)) {
            fail_msg("%s: cprdump output differs from %s.txt:\n%s",
                     golden_vectors[i].name, golden_vectors[i].name, out);
        }
        free(want);
        free(out);
        snprintf(args, sizeof(args), "verify '%s/%s.cprs'", th_vectors_dir(),
                 golden_vectors[i].name);
        assert_int_equal(run_cprdump(args, &out, &len), 0);
        free(out);
    }
}

/* Every proper prefix is rejected as malformed. */
static void test_truncations(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint8_t *buf, *copy;
    size_t i, n, size;
    int stage;

    (void)state;
    for (i = 0; i < golden_vector_count; i++) {
        buf = load_vector(golden_vectors[i].name, "cprs", &size);
        for (n = 0; n < size; n++) {
            /* An exact-size copy, so a read past n is an ASan error. */
            copy = malloc(n ? n : 1);
            memcpy(copy, buf, n);
            if (th_open_verify(copy, n, &d, &stage) != -EBADMSG) {
                fail_msg("%s truncated to %zu bytes was not rejected as "
                         "malformed", golden_vectors[i].name, n);
            }
            free(copy);
        }
        free(buf);
    }
}

/*
 * Every single-bit flip is rejected: every byte of a valid arena is
 * covered by a CRC, a structural check, or the rule that unclaimed bytes
 * are zero (spec 4.11).
 */
static void test_bit_flips(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint8_t *buf;
    size_t i, bit, size, flips = 0;
    int stage, ret;

    (void)state;
    for (i = 0; i < golden_vector_count; i++) {
        buf = load_vector(golden_vectors[i].name, "cprs", &size);
        for (bit = 0; bit < size * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ret = th_open_verify(buf, size, &d, &stage);
            if (ret != -EBADMSG && ret != -EPROTONOSUPPORT && ret != -E2BIG) {
                fail_msg("%s: flipping bit %zu of byte 0x%zx gave %d",
                         golden_vectors[i].name, bit % 8, bit / 8, ret);
            }
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            flips++;
        }
        free(buf);
    }
    assert_true(flips > 8 * 192);
}

/* cprdump verify exit codes: 2 corrupt, 3 unsupported, 1 I/O. */
static void test_verify_exit_codes(void **state)
{
    char path[4096], args[4200], *out;
    uint8_t *buf;
    size_t size, len;

    (void)state;
    buf = load_vector("qemu-q35-memfd", "cprs", &size);
    snprintf(path, sizeof(path), "%s/golden-corrupt.cprs", th_build_root());
    buf[size - 1] ^= 1;
    th_write_file(path, buf, size);
    snprintf(args, sizeof(args), "verify '%s'", path);
    assert_int_equal(run_cprdump(args, &out, &len), 2);
    assert_non_null(strstr(out, "invalid"));
    free(out);
    buf[size - 1] ^= 1;
    cprs_le16_set(&th_hdr(buf)->version_major, 2);
    th_write_file(path, buf, size);
    assert_int_equal(run_cprdump(args, &out, &len), 3);
    assert_non_null(strstr(out, "unsupported"));
    free(out);
    assert_int_equal(run_cprdump("verify /nonexistent/arena", &out, &len),
                     1);
    free(out);
    assert_int_equal(run_cprdump("verify", &out, &len), 1);
    free(out);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipes_match),
        cmocka_unit_test(test_dump_matches),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_verify_exit_codes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
