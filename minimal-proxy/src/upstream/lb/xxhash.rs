//! XXH64, the hash Envoy uses for ring hash and maglev keys (`HashUtil::xxHash64`), so a
//! request hash lands on the same host here as behind Envoy. The `xxhash-rust` crate computes
//! it; the tests pin the reference vectors Envoy's hashes depend on.

pub use xxhash_rust::xxh64::xxh64;

#[cfg(test)]
mod tests {
    use super::xxh64;

    #[test]
    fn matches_the_reference_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        // Longer than one 32-byte stripe.
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xFBCE_A83C_8A37_8BF1
        );
    }
}
