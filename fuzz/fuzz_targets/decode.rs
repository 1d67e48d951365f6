//! Image decoding and preprocessing: any bytes give an image or a typed error; an image gives
//! a finite tensor of the model's input size. The checks: `fuzz/checks/decode.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/decode.rs"]
mod checks;

static QUIET_CAUGHT_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // embed-core turns a panic inside a third-party decoder into a decode error with
    // catch_unwind; libFuzzer's panic hook would abort before it is caught. A panic that escapes
    // still aborts: libfuzzer-sys catches it around this body.
    QUIET_CAUGHT_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    checks::decode_target(data);
});
