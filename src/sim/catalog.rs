//! The simulator's images: loaded from a JSON file in the API's own shape,
//! or generated with realistic distributions from a seed.
//!
//! Owns the catalog file format (`{"images": [ImageInfo, ...]}`, where an
//! image may also carry the `MediaAuditResult` that `GetMediaAuditResult`
//! answers for it; without one, [`media_audit_result`] makes one coherent
//! with the image) and the generator. Each image is kept exactly as given (unknown fields, `FileSize`
//! as string or number) and pre-rendered to JSON once, so answering is a
//! copy, not a serialization.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

/// One image as the simulator answers it: the `ImageInfo` object as JSON
/// text, shared (a million images fit in well under a gigabyte).
#[derive(Debug, Clone)]
pub struct CatalogImage {
    pub json: std::sync::Arc<str>,
}

impl CatalogImage {
    /// The object, for XML answers and for writing the catalog.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// The simulator's images by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    images: HashMap<String, CatalogImage>,
    order: Vec<String>,
    /// The moderation answers given in the catalog, by id.
    moderation: HashMap<String, Value>,
}

/// The key of an image's own moderation answer in the catalog file: not a
/// field of `ImageInfo`, never sent in one.
pub const MODERATION_KEY: &str = "MediaAuditResult";

impl Catalog {
    /// Builds a catalog from `ImageInfo` objects; each needs a string `ImageId`.
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Result<Self, String> {
        let mut c = Catalog::default();
        for (i, mut v) in values.into_iter().enumerate() {
            let moderation = v.as_object_mut().and_then(|m| m.remove(MODERATION_KEY));
            let id = v
                .get("ImageId")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("image #{} has no string ImageId", i + 1))?
                .to_owned();
            if c.images.contains_key(&id) {
                return Err(format!("image #{}: ImageId {id:?} appears twice", i + 1));
            }
            let json = serde_json::to_string(&v).map_err(|e| e.to_string())?;
            if let Some(m) = moderation {
                c.moderation.insert(id.clone(), m);
            }
            c.order.push(id.clone());
            c.images.insert(id, CatalogImage { json: json.into() });
        }
        Ok(c)
    }

    /// Reads `{"images": [...]}` from a file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        let images = match v {
            Value::Object(mut m) => match m.remove("images") {
                Some(Value::Array(a)) => a,
                _ => return Err(format!("{}: expected {{\"images\": [ImageInfo, ...]}}", path.display())),
            },
            _ => return Err(format!("{}: expected {{\"images\": [ImageInfo, ...]}}", path.display())),
        };
        Catalog::from_values(images).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The image with this id.
    pub fn get(&self, id: &str) -> Option<&CatalogImage> {
        self.images.get(id)
    }

    /// What `GetMediaAuditResult` answers for this image: its own answer
    /// from the catalog, else one made coherent with it.
    pub fn moderation(&self, id: &str) -> Option<Value> {
        let image = self.images.get(id)?;
        Some(self.moderation.get(id).cloned().unwrap_or_else(|| media_audit_result(&image.value())))
    }

    /// An image whose id is not in `not`, chosen by `pick` in `[0, 1)`:
    /// the one at that fraction of the catalog, or the next one after it
    /// that qualifies. `None` when every image is in `not`.
    pub fn other_than(&self, not: &[&str], pick: f64) -> Option<(&str, &CatalogImage)> {
        let n = self.order.len();
        let start = ((pick * n as f64) as usize).min(n.saturating_sub(1));
        (0..n)
            .map(|i| &self.order[(start + i) % n])
            .find(|id| !not.contains(&id.as_str()))
            .map(|id| (id.as_str(), &self.images[id]))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Ids in file (or generation) order.
    pub fn ids(&self) -> &[String] {
        &self.order
    }

    /// The catalog as the file format.
    pub fn to_file_value(&self) -> Value {
        let image = |id: &String| {
            let mut v = self.images[id].value();
            if let (Some(m), Some(obj)) = (self.moderation.get(id), v.as_object_mut()) {
                obj.insert(MODERATION_KEY.into(), m.clone());
            }
            v
        };
        json!({"images": self.order.iter().map(image).collect::<Vec<_>>()})
    }
}

/// A small, fast, portable PRNG (splitmix64): the same seed gives the same
/// catalog and the same faults on every machine and crate version.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The splitmix64 finalizer: a good 64-bit hash of a 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const CATEGORIES: &[(i64, &str)] = &[
    (1000001, "News"),
    (1000002, "Sport, \"Live\""),
    (1000003, "娱乐 Entertainment"),
    (1000004, "Kids\nShows"),
    (1000005, "Cooking"),
    (1000006, "Music & Concerts"),
];

const TITLE_SHAPES: &[&str] = &[
    "Cover {n}",
    "Breaking: \"Storm\", day {n}",
    "封面图片 {n}",
    "Line one\nline two {n}",
    "Thumbnail, frame {n}",
    "Café crème — {n}",
    "<b>{n}</b> & 'quotes'",
    "=SUM(1,{n})",
    "  padded {n}  ",
];

const IMAGE_TYPES: &[&str] = &["CoverSnapshot", "NormalSnapshot", "SpriteSnapshot", "SpriteOriginSnapshot", "default"];

/// The second every image of a [`Burst`] was created in: inside the
/// generator's span of creation times (2024-01-01 plus 700 days).
pub const BURST_SECOND: &str = "2024-06-15T12:34:56Z";

/// How many categories a burst's images are spread over unless told.
pub const DEFAULT_BURST_CATEGORIES: usize = 4;

/// Creation times crowded into one second and one hour, as an account sees
/// after a bulk import: what a `SearchMedia` inventory must split to stay
/// within its 5,000-result paging window. The default is no burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Images created in [`BURST_SECOND`].
    pub second: usize,
    /// Categories the second's images are spread over, round robin (1 to 6).
    pub categories: usize,
    /// Images created in the clock hour holding [`BURST_SECOND`], the
    /// second's included (at least `second`).
    pub hour: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Burst { second: 0, categories: DEFAULT_BURST_CATEGORIES, hour: 0 }
    }
}

impl Burst {
    /// Checks the burst fits a catalog of `n` images.
    pub fn check(&self, n: usize) -> Result<(), String> {
        if !(1..=CATEGORIES.len()).contains(&self.categories) {
            return Err(format!("--burst-categories must be from 1 to {}", CATEGORIES.len()));
        }
        if self.hour != 0 && self.hour < self.second {
            return Err("--burst-hour counts the burst second's images too: it must be at least --burst-second".into());
        }
        if self.second.max(self.hour) > n {
            return Err(format!("the burst needs {} images, the catalog has {n}", self.second.max(self.hour)));
        }
        Ok(())
    }

    /// Moves image `i` of `n` into the burst, or out of the burst hour.
    /// Burst images are every `n / hour`-th, so they interleave with the rest.
    fn apply(&self, i: usize, n: usize, seed: u64, image: &mut Map<String, Value>) {
        let hour = self.hour.max(self.second);
        if hour == 0 {
            return;
        }
        let second = humantime::parse_rfc3339(BURST_SECOND).expect("constant date");
        let secs = second.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        let offset = secs % 3600;
        let hour_start = second - std::time::Duration::from_secs(offset);
        let stride = (n / hour).max(1);
        let at = |t: std::time::SystemTime| json!(humantime::format_rfc3339_seconds(t).to_string());
        if i.is_multiple_of(stride) && i / stride < hour {
            let rank = i / stride;
            if rank < self.second {
                let (cid, cname) = CATEGORIES[rank % self.categories];
                image.insert("CreationTime".into(), at(second));
                image.insert("CateId".into(), json!(cid));
                image.insert("CateName".into(), json!(cname));
            } else {
                // Anywhere in the hour but the burst second, so that it holds exactly `second`.
                let h = mix64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB0B5) % 3599;
                let h = if h >= offset { h + 1 } else { h };
                image.insert("CreationTime".into(), at(hour_start + std::time::Duration::from_secs(h)));
            }
        } else {
            // An image the generator happened to put in the burst hour moves a day back.
            let created =
                image.get("CreationTime").and_then(Value::as_str).and_then(|t| humantime::parse_rfc3339(t).ok());
            if let Some(t) =
                created.filter(|t| *t >= hour_start && *t < hour_start + std::time::Duration::from_secs(3600))
            {
                image.insert("CreationTime".into(), at(t - std::time::Duration::from_secs(86400)));
            }
        }
    }
}

/// Generates `n` images from `seed`: mostly `Normal`, some `Blocked`, some
/// without `AuditStatus`, a few `Uploading`/`UploadFail`, several categories
/// and uncategorized images, titles with commas, quotes, newlines and CJK,
/// `FileSize` as a string or a number.
pub fn generate(n: usize, seed: u64, region: &str) -> Vec<Value> {
    generate_iter(n, seed, region).collect()
}

/// [`generate`] with a [`Burst`] of creation times: the same images (ids,
/// titles, ...), but `burst.hour` of them created in the hour holding
/// [`BURST_SECOND`], `burst.second` of those in that very second, each of
/// the second's in one of `burst.categories` categories; no other image is
/// created in that hour. Call [`Burst::check`] first.
pub fn generate_iter_with(n: usize, seed: u64, region: &str, burst: Burst) -> impl Iterator<Item = Value> + '_ {
    generate_iter(n, seed, region).enumerate().map(move |(i, mut v)| {
        if let Value::Object(m) = &mut v {
            burst.apply(i, n, seed, m);
        }
        v
    })
}

/// [`generate`], one image at a time.
pub fn generate_iter(n: usize, seed: u64, region: &str) -> impl Iterator<Item = Value> + '_ {
    let mut rng = SplitMix::new(seed);
    let base = humantime::parse_rfc3339("2024-01-01T00:00:00Z").expect("constant date");
    (0..n)
        .map(move |i| {
            let id = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
            let mut m = Map::new();
            m.insert("ImageId".into(), json!(id));
            m.insert("AppId".into(), json!("app-1000000"));
            m.insert("RegionId".into(), json!(region));
            let shape = TITLE_SHAPES[rng.below(TITLE_SHAPES.len() as u64) as usize];
            m.insert("Title".into(), json!(shape.replace("{n}", &i.to_string())));
            if rng.unit() < 0.6 {
                m.insert("Description".into(), json!(format!("Image {i}, uploaded by the CMS")));
            }
            m.insert("ImageType".into(), json!(IMAGE_TYPES[rng.below(IMAGE_TYPES.len() as u64) as usize]));
            let audit = rng.unit();
            if audit < 0.85 {
                m.insert("AuditStatus".into(), json!("Normal"));
            } else if audit < 0.93 {
                m.insert("AuditStatus".into(), json!("Blocked"));
            } // else: absent, as newer answers do
            let status = rng.unit();
            let status = if status < 0.94 {
                "Normal"
            } else if status < 0.97 {
                "Uploading"
            } else {
                "UploadFail"
            };
            m.insert("Status".into(), json!(status));
            if rng.unit() >= 0.12 {
                let (cid, cname) = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
                m.insert("CateId".into(), json!(cid));
                m.insert("CateName".into(), json!(cname));
            }
            let created = base + std::time::Duration::from_secs(rng.below(86400 * 700));
            m.insert("CreationTime".into(), json!(humantime::format_rfc3339_seconds(created).to_string()));
            if rng.unit() < 0.5 {
                m.insert("Tags".into(), json!(format!("tag{},batch-{}", i % 7, i % 3)));
            }
            let host = format!("outin-{:08x}.oss-{region}.aliyuncs.com", seed as u32);
            m.insert("StorageLocation".into(), json!(host));
            m.insert("URL".into(), json!(format!("https://img.example.com/image/default/{id}.png?auth_key=1700000000-0-0-{i:x}")));
            if status != "Uploading" {
                let size = 1000 + rng.below(5_000_000);
                let file_size = if rng.unit() < 0.5 { json!(size.to_string()) } else { json!(size) };
                m.insert(
                    "Mezzanine".into(),
                    json!({
                        "FileSize": file_size,
                        "FileURL": format!("https://{host}/image/default/{id}.png?Expires=1700000000&OSSAccessKeyId=***&Signature=x%3D"),
                        "Width": 320 + rng.below(1600),
                        "Height": 180 + rng.below(900),
                        "OriginalFileName": format!("upload_{i}.png"),
                    }),
                );
            }
            Value::Object(m)
        })
}

/// Labels under the `porn` scene that are not `normal` (vod-openapi.md §9).
const PORN_LABELS: &[&str] = &["porn", "sexy"];

/// Labels under the `terrorism` scene that are not `normal` (§9).
const TERRORISM_LABELS: &[&str] = &[
    "bloody",
    "explosion",
    "outfit",
    "logo",
    "weapon",
    "politics",
    "violence",
    "crowd",
    "parade",
    "carcrash",
    "flag",
    "location",
    "others",
];

/// Labels of a text result that are not `normal` (§9: `TextResult.Label`).
const TEXT_LABELS: &[&str] = &["spam", "ad", "abuse", "flood", "contraband", "meaningless"];

/// How the machine judged an image, before the answer is shaped.
enum Judged {
    /// The cover, in this scene, for this label.
    Image {
        scene: &'static str,
        label: &'static str,
        suggestion: &'static str,
    },
    /// The title alone, for this label.
    Title {
        label: &'static str,
    },
    Pass,
}

/// The moderation result of a catalog image, in the service's vocabulary
/// (vod-openapi.md §9; shape of alibabacloud-java-sdk `vod-20170321`
/// `GetMediaAuditResultResponseBody`): scenes `porn` and `terrorism` with
/// their documented labels, text labels under `antispam`, suggestions
/// `block` / `review` / `pass`. Coherent with `AuditStatus`, chosen by the id
/// so each image keeps it from run to run: a `Blocked` image is mostly a
/// machine block (one in five of them for the title alone), one in ten a
/// person's block of what the machine passed; a `Normal` image mostly a
/// pass, one in twenty-five a person's clearing of a machine block; an image
/// without `AuditStatus` is judged by the hash alone (one in twelve blocked,
/// one in twelve sent to review), so an account whose answers lack
/// `AuditStatus` still has verdicts to find.
pub fn media_audit_result(image: &Value) -> Value {
    let id = image.get("ImageId").and_then(Value::as_str).unwrap_or_default();
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let pick = |list: &'static [&'static str], salt: u64| list[((hash >> salt) % list.len() as u64) as usize];
    let block = |salt: u64| match (hash >> salt) % 5 {
        0 => Judged::Title { label: pick(TEXT_LABELS, 11) },
        1 | 2 => Judged::Image { scene: "porn", label: pick(PORN_LABELS, 13), suggestion: "block" },
        _ => Judged::Image { scene: "terrorism", label: pick(TERRORISM_LABELS, 17), suggestion: "block" },
    };
    let judged = match image.get("AuditStatus").and_then(Value::as_str) {
        Some("Blocked") if (hash >> 7) % 10 == 3 => Judged::Pass,
        Some("Blocked") => block(3),
        Some(_) if (hash >> 7) % 25 == 4 => block(3),
        Some(_) => Judged::Pass,
        None => match hash % 12 {
            0 => block(3),
            1 => Judged::Image { scene: "porn", label: "sexy", suggestion: "review" },
            _ => Judged::Pass,
        },
    };
    let url = image.get("URL").cloned().unwrap_or(Value::Null);
    let title = image.get("Title").cloned().unwrap_or(Value::Null);
    let cover_pass = json!({"Type": "cover", "Url": url, "Suggestion": "pass", "Label": "normal",
        "Result": [{"Scene": "porn", "Label": "normal", "Suggestion": "pass", "Score": "0.52"},
                   {"Scene": "terrorism", "Label": "normal", "Suggestion": "pass", "Score": "0.31"}]});
    let title_pass = json!([{"Type": "title", "Scene": "antispam", "Label": "normal", "Suggestion": "pass",
        "Content": title, "Score": "0.10"}]);
    match judged {
        Judged::Image { scene, label, suggestion } => json!({
            "Suggestion": suggestion, "Label": label, "AbnormalModules": "image-cover",
            "ImageResult": [{"Type": "cover", "Url": url, "Suggestion": suggestion, "Label": label,
                "Result": [{"Scene": scene, "Label": label, "Suggestion": suggestion, "Score": "99.50"}]}],
            "TextResult": title_pass,
        }),
        Judged::Title { label } => json!({
            "Suggestion": "block", "Label": label, "AbnormalModules": "text-title",
            "ImageResult": [cover_pass],
            "TextResult": [{"Type": "title", "Scene": "antispam", "Label": label, "Suggestion": "block",
                "Content": title, "Score": "99.91"}],
        }),
        Judged::Pass => json!({
            "Suggestion": "pass", "Label": "normal", "AbnormalModules": "",
            "ImageResult": [cover_pass], "TextResult": title_pass,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_reproducible_and_varied() {
        let a = generate(2000, 7, "cn-shanghai");
        assert_eq!(a, generate(2000, 7, "cn-shanghai"));
        assert_ne!(a, generate(2000, 8, "cn-shanghai"));
        let count = |f: &dyn Fn(&Value) -> bool| a.iter().filter(|v| f(v)).count();
        let blocked = count(&|v| v["AuditStatus"] == "Blocked");
        let no_audit = count(&|v| v.get("AuditStatus").is_none());
        let normal = count(&|v| v["AuditStatus"] == "Normal");
        assert!(normal > 1500 && blocked > 80 && no_audit > 60, "{normal} {blocked} {no_audit}");
        assert!(count(&|v| v["Status"] == "Uploading") > 10);
        assert!(count(&|v| v["Status"] == "UploadFail") > 10);
        assert!(count(&|v| v.get("CateId").is_none()) > 100);
        assert!(count(&|v| v["Mezzanine"]["FileSize"].is_string()) > 100);
        assert!(count(&|v| v["Mezzanine"]["FileSize"].is_number()) > 100);
        assert!(count(&|v| v["Title"].as_str().unwrap().contains('\n')) > 10);
        assert!(count(&|v| v["Title"].as_str().unwrap().contains('封')) > 10);
        let c = Catalog::from_values(a).unwrap();
        assert_eq!(c.len(), 2000);
    }

    #[test]
    fn a_burst_crowds_exact_counts_into_one_second_and_one_hour() {
        let burst = Burst { second: 5500, categories: DEFAULT_BURST_CATEGORIES, hour: 6000 };
        burst.check(23_000).unwrap();
        let plain = generate(23_000, 3, "cn-shanghai");
        let with: Vec<Value> = generate_iter_with(23_000, 3, "cn-shanghai", burst).collect();
        assert_eq!(with, generate_iter_with(23_000, 3, "cn-shanghai", burst).collect::<Vec<_>>());
        let in_second: Vec<&Value> = with.iter().filter(|v| v["CreationTime"] == BURST_SECOND).collect();
        assert_eq!(in_second.len(), 5500);
        let in_hour = with.iter().filter(|v| v["CreationTime"].as_str().unwrap().starts_with("2024-06-15T12:")).count();
        assert_eq!(in_hour, 6000);
        let mut cates = std::collections::BTreeMap::<i64, usize>::new();
        for v in &in_second {
            *cates.entry(v["CateId"].as_i64().expect("a burst image has a category")).or_default() += 1;
        }
        assert_eq!(cates.len(), 4, "{cates:?}");
        assert!(cates.values().all(|n| *n == 1375), "{cates:?}");
        // Only creation times and the burst's categories change: the images stay the same.
        for (a, b) in plain.iter().zip(&with) {
            assert_eq!((&a["ImageId"], &a["Title"], &a["Status"]), (&b["ImageId"], &b["Title"], &b["Status"]));
        }
        assert_ne!(plain, with);
        assert_eq!(
            generate_iter_with(50, 3, "cn-shanghai", Burst::default()).collect::<Vec<_>>(),
            generate(50, 3, "cn-shanghai")
        );
    }

    #[test]
    fn a_burst_may_fill_one_category_and_must_fit() {
        let burst = Burst { second: 5001, categories: 1, hour: 0 };
        burst.check(5001).unwrap();
        let all: Vec<Value> = generate_iter_with(5001, 9, "cn-shanghai", burst).collect();
        assert!(all.iter().all(|v| v["CreationTime"] == BURST_SECOND && v["CateId"] == CATEGORIES[0].0));
        assert!(Burst { second: 10, categories: 0, hour: 0 }.check(100).is_err());
        assert!(Burst { second: 10, categories: 7, hour: 0 }.check(100).is_err());
        assert!(Burst { second: 10, categories: 4, hour: 5 }.check(100).is_err());
        assert!(Burst { second: 10, categories: 4, hour: 101 }.check(100).is_err());
        assert!(Burst { second: 0, categories: 4, hour: 100 }.check(100).is_ok());
    }

    #[test]
    fn duplicate_and_idless_images_are_refused() {
        assert!(Catalog::from_values(vec![json!({"ImageId": "a"}), json!({"ImageId": "a"})]).is_err());
        assert!(Catalog::from_values(vec![json!({"Title": "x"})]).is_err());
    }

    #[test]
    fn other_than_skips_the_excluded_and_wraps() {
        let c = Catalog::from_values(vec![json!({"ImageId": "a"}), json!({"ImageId": "b"}), json!({"ImageId": "c"})])
            .unwrap();
        assert_eq!(c.other_than(&["a"], 0.0).unwrap().0, "b");
        assert_eq!(c.other_than(&["c"], 0.99).unwrap().0, "a");
        assert_eq!(c.other_than(&[], 0.5).unwrap().0, "b");
        assert!(c.other_than(&["a", "b", "c"], 0.2).is_none());
        assert!(Catalog::default().other_than(&[], 0.5).is_none());
    }
}
