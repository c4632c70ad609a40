/*
 * fuzz_meta.c - libFuzzer harness for the meta protocol (mg, ms, md, ma,
 * mn, me).  The entry point is the text one, as for a real client: meta
 * requests arrive on a -B ascii connection through conn.c and
 * proto_text.c's dispatch into proto_meta.c; what makes this harness
 * meta's is its corpus (fuzz/corpus/meta/) and dictionary.
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
