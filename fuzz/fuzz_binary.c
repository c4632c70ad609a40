/*
 * fuzz_binary.c - libFuzzer harness for the binary protocol.  An input is
 * the byte stream of one connection to a server run with -B binary:
 * frames, possibly cut short, read by conn.c in three pieces and served
 * by proto_bin.c from real storage (fuzz_conn.c).  SASL has its own
 * harness.
 */
#include "fuzz/fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_mode mode = {PROTO_BINARY, false, false};

    fuzz_conn_init();
    fuzz_conn_run(&mode, data, size);
    return 0;
}
