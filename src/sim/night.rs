//! The simulated account from night to night (`simulate --night N`, the
//! demo's nights): night 1 is the catalog as given; each later night blocks,
//! unblocks, deletes and adds a few images, the same ones every time for the
//! same catalog, so consecutive runs show changes without editing JSON.
//!
//! Owns which images change on which night. It knows nothing of serving:
//! it turns a list of catalog images (the API's `ImageInfo` shape) into
//! another, before [`super::Catalog::from_values`] reads it.

use serde_json::Value;

use super::catalog::{generate, mix64};

/// Images the account blocks each night (`Normal` → `Blocked`).
pub const BLOCKED_PER_NIGHT: usize = 3;
/// Images whose block is lifted each night (`Blocked` → `Normal`).
pub const UNBLOCKED_PER_NIGHT: usize = 2;
/// Images deleted each night (answered `NoSuchResource` from then on).
pub const DELETED_PER_NIGHT: usize = 2;
/// Images uploaded each night.
pub const ADDED_PER_NIGHT: usize = 3;

/// The catalog of night `night` (1: `images` as given), the changes of
/// every night from 2 to `night` applied in turn.
pub fn apply(mut images: Vec<Value>, night: u32, region: &str) -> Vec<Value> {
    for n in 2..=night {
        images = one_night(images, n, region);
    }
    images
}

/// A stable hash of an id for one night: which images change is a property
/// of the catalog and the night, never of the order the file lists them in.
fn rank(id: &str, night: u32) -> u64 {
    let fnv = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    mix64(fnv ^ u64::from(night).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn id_of(v: &Value) -> &str {
    v.get("ImageId").and_then(Value::as_str).unwrap_or("")
}

fn one_night(mut images: Vec<Value>, night: u32, region: &str) -> Vec<Value> {
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&i| (rank(id_of(&images[i]), night), i));
    let status = |v: &Value| v.get("AuditStatus").and_then(Value::as_str).map(str::to_owned);
    let mut touched = vec![false; images.len()];
    let mut pick = |images: &[Value], want: &dyn Fn(&Value) -> bool, n: usize| -> Vec<usize> {
        let chosen: Vec<usize> = order.iter().copied().filter(|&i| !touched[i] && want(&images[i])).take(n).collect();
        for &i in &chosen {
            touched[i] = true;
        }
        chosen
    };
    let block = pick(&images, &|v| status(v).as_deref() == Some("Normal"), BLOCKED_PER_NIGHT);
    let unblock = pick(&images, &|v| status(v).as_deref() == Some("Blocked"), UNBLOCKED_PER_NIGHT);
    let delete = pick(&images, &|_| true, DELETED_PER_NIGHT);
    for i in block {
        images[i]["AuditStatus"] = "Blocked".into();
    }
    for i in unblock {
        images[i]["AuditStatus"] = "Normal".into();
    }
    let mut index = 0;
    images.retain(|_| {
        index += 1;
        !delete.contains(&(index - 1))
    });
    // New uploads: generated images of a seed of their own, so their ids are
    // new and the same every time.
    images.extend(generate(ADDED_PER_NIGHT, 0x6e69_6768_7400 + u64::from(night), region));
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn night_one_is_the_catalog_and_later_nights_change_a_few_images_the_same_way_each_time() {
        let base = generate(200, 7, "cn-shanghai");
        assert_eq!(apply(base.clone(), 1, "cn-shanghai"), base);
        let two = apply(base.clone(), 2, "cn-shanghai");
        assert_eq!(two, apply(base.clone(), 2, "cn-shanghai"));
        assert_eq!(two.len(), base.len() - DELETED_PER_NIGHT + ADDED_PER_NIGHT);
        let three = apply(base.clone(), 3, "cn-shanghai");
        assert_ne!(three, two, "each night changes something");
        let reordered: Vec<Value> = base.iter().rev().cloned().collect();
        let mut a: Vec<String> = apply(reordered, 2, "cn-shanghai").iter().map(|v| id_of(v).to_owned()).collect();
        let mut b: Vec<String> = two.iter().map(|v| id_of(v).to_owned()).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the order of the file does not change which images change");
    }
}
