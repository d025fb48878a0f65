/* Native baseline for the benchmark (crates/sandbox/benches/wasm.rs): the same work as the
 * component's GET /sha (fill the 1 MiB buffer, SHA-256 it), N times; prints the hex digest
 * and the nanoseconds the N rounds took (CLOCK_MONOTONIC around the loop only). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sha256.h"

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1;
    static uint8_t buf[1 << 20];
    uint8_t d[32];
    unsigned sink = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof buf; j++) buf[j] = (uint8_t)j;
        sha256(buf, sizeof buf, d);
        sink += d[0]; /* keep every round live */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < 32; i++) printf("%02x", d[i]);
    printf(" %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return sink == 0xffffffffu; /* never true; uses `sink` */
}
