// Does decoding only the columns a centre crop keeps (TurboJPEG's cropping region) make JPEG
// decoding faster? Measured answer (docs/BENCHMARKS.md, "Preprocessing"): no. Kept so the
// experiment can be rerun against a newer libjpeg-turbo.
//
// Build against the libjpeg-turbo that turbojpeg-sys built (after any `cargo build --release`):
//   D=$(dirname $(find target/release/build -name libturbojpeg.a -path '*out/lib*' | head -1))/..
//   gcc -O2 scripts/experiments/jpeg_crop_decode.c -I$D/include $D/lib/libturbojpeg.a -o /tmp/crop
//   X0=32 X1=464 /tmp/crop target/bench-data/preprocess-jpegs/*.jpg   # CLIP's columns of 500x400
//   X0=48 X1=352 /tmp/crop target/bench-data/preprocess-jpegs/*.jpg   # DINOv2's
// X0 must be a multiple of the iMCU width (16 for 4:2:0). It prints how many bytes of the cropped
// decode differ from the same columns of a full decode (the fancy-upsampling edge columns do), then
// the best of 7 rounds, in ms per image, of full (mode 0) and cropped (mode 1) decoding.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <turbojpeg.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int n = argc - 1;
  if (n < 1 || n > 64 || !getenv("X0") || !getenv("X1")) {
    fprintf(stderr, "usage: X0=.. X1=.. %s FILE.jpg... (1 to 64 files)\n", argv[0]);
    return 2;
  }
  int x0 = atoi(getenv("X0")), x1 = atoi(getenv("X1"));
  unsigned char *buf[64];
  size_t sz[64];
  for (int i = 0; i < n; i++) {
    FILE *f = fopen(argv[i + 1], "rb");
    if (!f) { perror(argv[i + 1]); return 1; }
    fseek(f, 0, SEEK_END);
    sz[i] = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf[i] = malloc(sz[i]);
    if (fread(buf[i], 1, sz[i], f) != sz[i]) { perror(argv[i + 1]); return 1; }
    fclose(f);
  }
  tjhandle h = tj3Init(TJINIT_DECOMPRESS);
  unsigned char *full = malloc(4096 * 4096 * 3), *crop = malloc(4096 * 4096 * 3);
  long differ = 0;
  for (int i = 0; i < n; i++) {
    tj3DecompressHeader(h, buf[i], sz[i]);
    int w = tj3Get(h, TJPARAM_JPEGWIDTH), hh = tj3Get(h, TJPARAM_JPEGHEIGHT);
    tjregion none = {0, 0, 0, 0}, r = {x0, 0, x1 - x0, hh};
    tj3SetCroppingRegion(h, none);
    tj3Decompress8(h, buf[i], sz[i], full, w * 3, TJPF_RGB);
    if (tj3SetCroppingRegion(h, r) ||
        tj3Decompress8(h, buf[i], sz[i], crop, (x1 - x0) * 3, TJPF_RGB)) {
      fprintf(stderr, "%s\n", tj3GetErrorStr(h));
      return 1;
    }
    for (int y = 0; y < hh; y++)
      for (int x = x0; x < x1; x++)
        for (int c = 0; c < 3; c++)
          differ += full[(y * w + x) * 3 + c] != crop[(y * (x1 - x0) + x - x0) * 3 + c];
  }
  printf("bytes that differ from the full decode: %ld\n", differ);
  for (int mode = 0; mode < 2; mode++) {
    double best = 1e9;
    for (int rep = 0; rep < 7; rep++) {
      double t = now();
      for (int k = 0; k < 10; k++)
        for (int i = 0; i < n; i++) {
          tj3DecompressHeader(h, buf[i], sz[i]);
          int w = tj3Get(h, TJPARAM_JPEGWIDTH), hh = tj3Get(h, TJPARAM_JPEGHEIGHT);
          tjregion none = {0, 0, 0, 0}, r = {x0, 0, x1 - x0, hh};
          tj3SetCroppingRegion(h, mode ? r : none);
          tj3Decompress8(h, buf[i], sz[i], mode ? crop : full, (mode ? x1 - x0 : w) * 3,
                         TJPF_RGB);
        }
      double dt = (now() - t) / (10 * n) * 1e3;
      if (dt < best) best = dt;
    }
    printf("mode %d (%s): %.4f ms/image\n", mode, mode ? "cropped" : "full", best);
  }
  return 0;
}
