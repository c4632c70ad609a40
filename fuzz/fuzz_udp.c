/*
 * fuzz_udp.c - libFuzzer harness for the UDP port (-U): inputs are
 * datagrams, frame header and all, served by conn_udp.c through the text,
 * meta and binary handlers from real storage (fuzz_conn.c).
 */
#include "fuzz/fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_conn_init();
    fuzz_conn_run_udp(data, size);
    return 0;
}
