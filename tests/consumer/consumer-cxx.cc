// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A C++ program built against the installed libcprstate: the headers
// compile as C++ and the functions link with C linkage.
//
// consumer-cxx ARENA
#include <cstdio>

#include <cprstate.h>

int main(int argc, char **argv)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *reader = nullptr;
    int ret;

    if (argc != 2) {
        std::fprintf(stderr, "usage: consumer-cxx ARENA\n");
        return 2;
    }
    ret = cprs_reader_open_path(argv[1], nullptr, &diag, &reader);
    if (!ret) {
        ret = cprs_reader_verify(reader, &diag);
    }
    cprs_reader_close(reader);
    if (ret) {
        std::fprintf(stderr, "consumer-cxx: %s: %s\n", argv[1],
                     cprs_strerror(ret));
        return 1;
    }
    std::printf("consumer-cxx: libcprstate %s from C++: %s verified\n",
                cprs_version(), argv[1]);
    return 0;
}
