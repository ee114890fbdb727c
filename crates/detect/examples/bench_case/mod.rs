//! The benchmark's key, payloads and attack seeds (as `tattle bench` derives
//! them), so that one case of its tables can be looked at alone.

use image::DynamicImage;
use tattle_detect::{Key, Payload};

/// The benchmark's key, or with `BENCH_KEY=N` its `N`th key of `--keys`.
pub fn key() -> Key {
    let name = match std::env::var("BENCH_KEY") {
        Ok(n) if n != "0" => format!("mark {n}"),
        _ => String::from("mark"),
    };
    Key::from_bytes(blake3::derive_key(
        "tattle bench public test key",
        name.as_bytes(),
    ))
}

/// The payload the benchmark gives image `index` (corpus order).
pub fn payload(index: u64) -> Payload {
    Payload::new(0x7a77_1e00_0000_0000 ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `attack` (a chain such as `scale-0.5-bicubic+jpeg-75`) applied as the
/// benchmark applies its `attack_index`th attack to image `index`.
pub fn attack(
    image: &DynamicImage,
    index: u64,
    attack_index: u64,
    attack: &str,
) -> Result<DynamicImage, Box<dyn std::error::Error>> {
    let chain = tattle_attacks::Chain::parse(attack).ok_or_else(|| format!("unknown attack {attack}"))?;
    Ok(chain.apply(image, index * 1000 + attack_index)?)
}

/// One case of the benchmark's tables: an image marked with the benchmark's
/// key and payload, and attacked as the benchmark attacks it.
#[allow(dead_code)]
pub struct Case {
    pub key: Key,
    pub payload: Payload,
    pub original: DynamicImage,
    pub attacked: DynamicImage,
}

/// The case the command line names: `IMAGE INDEX ATTACK_INDEX ATTACK`
/// (image `IMAGE`, the `INDEX`th of the corpus, under the `ATTACK_INDEX`th
/// attack of the list, `ATTACK`), then the example's own arguments, which
/// are returned. `usage` is the example's usage line, for the error.
// Examples that loop over images build their cases themselves.
#[allow(dead_code)]
pub fn from_args(usage: &str) -> Result<(Case, Vec<String>), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, index, attack_index, attack_name, rest @ ..] = args.as_slice() else {
        return Err(format!("usage: {usage}").into());
    };
    let index: u64 = index.parse()?;
    let key = key();
    let payload = payload(index);
    let original = image::open(path)?;
    let marked = tattle_embed::EmbedOptions::default()
        .build(&key)?
        .embed(&original, payload)?;
    let attacked = attack(&marked, index, attack_index.parse()?, attack_name)?;
    let case = Case {
        key,
        payload,
        original,
        attacked,
    };
    Ok((case, rest.to_vec()))
}
