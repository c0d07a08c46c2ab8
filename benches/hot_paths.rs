//! Micro-benchmarks of the client's per-call hot paths: signing one
//! `GetImageInfo` request and decoding one `GetImageInfo` answer.
//!
//! ```sh
//! cargo bench --bench hot_paths                                  # full measurement
//! cargo bench --bench hot_paths -- --quick                       # ~1 s, noisy
//! cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3  # ~12 s, steadier
//! ```
//!
//! The end-to-end figures (calls/s, CPU per call, memory, the quota) are
//! `bench/run`'s; these isolate the two pure steps every call makes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vod_image_audit::api::model::GetImageInfoResponse;
use vod_image_audit::api::signing;

/// The documented JSON example of a `GetImageInfo` answer, verbatim
/// (shared/reference/GetImageInfo.md, "Sample success responses").
const DOCUMENTED_ANSWER: &str = r#"{
    "RequestId": "AB99D4DF-FAFA-49*****DC-9C548C1E261E",
    "ImageInfo": {
        "Description": "Test description",
        "Mezzanine": {
            "OriginalFileName": "https://outin-bfefbb*****163e1c7426.oss-cn-shanghai.aliyuncs.com/image/default/5E84CD536*****D4DAD.png?Expires=1590982353&OSSAccessKeyId=*****&Signature=ALPET74o*****c%3D",
            "Height": 200,
            "Width": 200,
            "FileSize": 8932
        },
        "CreationTime": "2018-11-21T02:37:23Z",
        "ImageId": "bbc65bba53f9*****ed90de118a7849",
        "Title": "this is a sample",
        "CateId": 254766071,
        "CateName": "Test",
        "StorageLocation": "outin-bfefbb*****163e1c7426.oss-cn-shanghai.aliyuncs.com",
        "Tags": "tag1,tag2,tag3",
        "URL": "https://al*****.cn/image/default/5E84CD536*****D4DAD.png?auth_key=159098055*****70a396e834",
        "ImageType": "default"
    }
}"#;

/// Every parameter the client sends with one `GetImageInfo` call
/// (`VodClient::params`, default settings: `OutputType=cdn`, no STS token),
/// in the client's order, with a real-looking nonce and timestamp.
fn get_image_info_params() -> Vec<(String, String)> {
    [
        ("Action", "GetImageInfo"),
        ("Version", "2017-03-21"),
        ("Format", "JSON"),
        ("AccessKeyId", "LTAI5tBcc2xBx8s3JnLkNq7T"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "3f2b9c0e1d4a4b6c8e7f0a1b2c3d4e5f"),
        ("Timestamp", "2026-11-28T02:15:07Z"),
        ("ImageId", "3e34733b40b04b9a96ccf5c1ff6f69c2"),
        ("OutputType", "cdn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn signing(c: &mut Criterion) {
    let params = get_image_info_params();
    // A made-up secret of a real secret's length (30 characters).
    let secret = "bench0secret0not0a0real0key000";
    let mut g = c.benchmark_group("signing");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signed_query GetImageInfo", |b| {
        b.iter(|| signing::signed_query(black_box("POST"), black_box(&params), black_box(secret)))
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let body = DOCUMENTED_ANSWER.as_bytes();
    // The benchmark is only worth its name if the example decodes.
    let check: GetImageInfoResponse = serde_json::from_slice(body).expect("the documented example decodes");
    assert_eq!(check.image_info.and_then(|i| i.cate_id), Some(254766071));
    let mut g = c.benchmark_group("parsing");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("GetImageInfoResponse documented example", |b| {
        b.iter(|| serde_json::from_slice::<GetImageInfoResponse>(black_box(body)).expect("decodes"))
    });
    g.finish();
}

criterion_group!(hot_paths, signing, parsing);
criterion_main!(hot_paths);
