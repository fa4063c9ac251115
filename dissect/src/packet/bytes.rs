//! Bounds-checked big-endian reads: every access returns `None` past the end
//! instead of panicking, so layer code can use `?`-style early returns.

#[inline(always)]
pub(crate) fn u8_at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

#[inline(always)]
pub(crate) fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    let s: [u8; 2] = b.get(i..i.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(s))
}

#[inline(always)]
pub(crate) fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(i..i.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

#[inline(always)]
pub(crate) fn array_at<const N: usize>(b: &[u8], i: usize) -> Option<[u8; N]> {
    b.get(i..i.checked_add(N)?)?.try_into().ok()
}

/// `b[from..]`, or empty when `from` is past the end.
#[inline(always)]
pub(crate) fn tail(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// `b[..to]` clamped to the length of `b`.
#[inline(always)]
pub(crate) fn head(b: &[u8], to: usize) -> &[u8] {
    b.get(..to).unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(u8_at(&b, 4), Some(5));
        assert_eq!(u8_at(&b, 5), None);
        assert_eq!(u16_at(&b, 3), Some(0x0405));
        assert_eq!(u16_at(&b, 4), None);
        assert_eq!(u32_at(&b, 1), Some(0x0203_0405));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
        assert_eq!(array_at::<2>(&b, 0), Some([1, 2]));
        assert_eq!(tail(&b, 9), &[] as &[u8]);
        assert_eq!(head(&b, 9), &b);
        assert_eq!(head(&b, 2), &[1, 2]);
    }
}
