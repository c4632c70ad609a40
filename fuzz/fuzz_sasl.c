/*
 * fuzz_sasl.c - libFuzzer harness for authentication.  An input whose
 * first byte is the binary magic (0x80) goes to a server run with -S
 * (binary SASL: LIST_MECHS, AUTH, STEP, then commands once in); any
 * other to one run with -Y (text: the "set" carrying "user password").
 * The password file holds fuzz:secret and "user:pass word"
 * (fuzz_conn.c); sasl.c (Cyrus SASL, PLAIN only) and authfile.c
 * check them.
 */
#include "fuzz/fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_mode bin = {PROTO_BINARY, true, false};
    static const struct fuzz_mode text = {PROTO_ASCII, false, true};

    fuzz_conn_init();
    fuzz_conn_run(size > 0 && data[0] == 0x80 ? &bin : &text, data, size);
    return 0;
}
