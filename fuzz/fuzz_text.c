/*
 * fuzz_text.c - libFuzzer harness for the text protocol.  An input is
 * everything one client sends on a connection to a server run with
 * -B ascii; conn.c reads it in three pieces and proto_text.c serves it
 * from real storage (fuzz_conn.c).  Meta commands have their own harness.
 */
#include "fuzz/fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_mode mode = {PROTO_ASCII, false, false};

    fuzz_conn_init();
    fuzz_conn_run(&mode, data, size);
    return 0;
}
