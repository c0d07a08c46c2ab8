//! Paging limits, order and ties, `Fields` and the other search types, on
//! small hand-made catalogs (the `Match` grammar is tested in `protocol`).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::*;

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn image_params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = params(&[("SearchType", "image")]);
    p.extend(params(extra));
    p
}

fn request(extra: &[(&str, &str)]) -> SearchRequest {
    parse_request(&image_params(extra)).unwrap_or_else(|r| panic!("{extra:?} refused: {}", r.message))
}

/// Three images in one second (ids out of order), one earlier, one later,
/// one without `CreationTime`.
fn catalog() -> Catalog {
    Catalog::from_values(vec![
        json!({"ImageId": "t-c", "CreationTime": "2024-05-01T10:00:00Z", "CateId": 1, "CateName": "A", "Status": "Normal", "Title": "c"}),
        json!({"ImageId": "late", "CreationTime": "2024-05-01T10:00:01Z", "CateId": "2", "Status": "Uploading"}),
        json!({"ImageId": "t-a", "CreationTime": "2024-05-01T10:00:00Z", "CateId": 1, "Status": "Normal", "Description": "d"}),
        json!({"ImageId": "no-time", "CateId": 1, "Status": "Normal"}),
        json!({"ImageId": "early", "CreationTime": "2024-05-01T09:59:59Z", "Status": "UploadFail"}),
        json!({"ImageId": "t-b", "CreationTime": "2024-05-01T10:00:00Z", "CateId": 3, "Status": "Normal"}),
    ])
    .unwrap()
}

fn ids(index: &Index, page: &[usize]) -> Vec<String> {
    page.iter().map(|&i| index.entries[i].id.clone()).collect()
}

#[test]
fn paging_stops_at_five_thousand_results() {
    let ok = request(&[("PageNo", "50"), ("PageSize", "100")]);
    assert_eq!((ok.page_no, ok.page_size), (50, 100));
    assert!(parse_request(&image_params(&[("PageNo", "5000"), ("PageSize", "1")])).is_ok());
    for (no, size, end) in [("51", "100", 5100), ("5001", "1", 5001), ("2501", "2", 5002), ("501", "10", 5010)] {
        let r = parse_request(&image_params(&[("PageNo", no), ("PageSize", size)])).unwrap_err();
        assert!(r.over_limit, "{no}*{size}");
        assert_eq!(r.page_end, Some(end));
    }
    // PageSize defaults to 10: PageNo 501 is past the window.
    assert!(parse_request(&image_params(&[("PageNo", "500")])).is_ok());
    assert!(parse_request(&image_params(&[("PageNo", "501")])).unwrap_err().over_limit);
}

#[test]
fn page_numbers_and_sizes_must_be_whole_numbers_in_range() {
    let r = request(&[]);
    assert_eq!((r.page_no, r.page_size, r.order), (1, DEFAULT_PAGE_SIZE, Order::Desc));
    for (name, bad) in [
        ("PageSize", "101"),
        ("PageSize", "0"),
        ("PageSize", "-1"),
        ("PageSize", "ten"),
        ("PageSize", "+5"),
        ("PageSize", " 5"),
        ("PageSize", "5.0"),
        ("PageNo", "0"),
        ("PageNo", "-2"),
        ("PageNo", "x"),
        ("PageNo", "99999999999999999999999"),
    ] {
        let r = parse_request(&image_params(&[(name, bad)])).unwrap_err();
        assert!(!r.over_limit && r.message.contains(name), "{name}={bad}: {r:?}");
    }
    assert_eq!(request(&[("PageSize", "100")]).page_size, 100);
}

#[test]
fn other_parameters_are_checked_strictly() {
    for bad in [
        [("SearchType", "images")],
        [("SortBy", "Title:Asc")],
        [("SortBy", "CreationTime:desc")],
        [("SortBy", "CreationTime")],
        [("Fields", "Title,CoverURL")],
        [("Match", "Title = 'x'")],
        [("ScrollToken", "24e0fba7188fae707e146esa54aaaaaa")],
    ] {
        let mut p = image_params(&[]);
        p.retain(|(k, _)| k != bad[0].0);
        p.extend(params(&bad));
        let r = parse_request(&p).unwrap_err();
        assert!(r.message.contains(bad[0].0) && !r.over_limit, "{bad:?}: {r:?}");
    }
}

#[test]
fn newest_first_by_default_and_ties_broken_by_id() {
    let c = catalog();
    let index = Index::build(&c);
    let (total, page) = select(&index, &request(&[]), None);
    assert_eq!(total, 6);
    assert_eq!(ids(&index, &page), ["late", "t-a", "t-b", "t-c", "early", "no-time"]);
    let (_, page) = select(&index, &request(&[("SortBy", "CreationTime:Asc")]), None);
    assert_eq!(ids(&index, &page), ["early", "t-a", "t-b", "t-c", "late", "no-time"]);
}

#[test]
fn pages_of_a_fixed_query_partition_its_matches() {
    let c = catalog();
    let index = Index::build(&c);
    let m = "CreationTime = ['2024-05-01T10:00:00Z','2024-05-01T10:00:00Z']";
    let mut seen = Vec::new();
    for no in ["1", "2"] {
        let (total, page) = select(&index, &request(&[("Match", m), ("PageSize", "2"), ("PageNo", no)]), None);
        assert_eq!(total, 3);
        seen.extend(ids(&index, &page));
    }
    assert_eq!(seen, ["t-a", "t-b", "t-c"]);
    let (total, page) = select(&index, &request(&[("Match", m), ("PageSize", "2"), ("PageNo", "3")]), None);
    assert_eq!((total, page.len()), (3, 0), "past the end: the total, an empty page");
    let (total, _) = select(&index, &request(&[("Match", "CateId = 1 and Status = 'Normal'")]), None);
    assert_eq!(total, 3, "no-time has CateId 1 too");
}

#[test]
fn unstable_ties_reorder_within_a_second_only() {
    let values: Vec<Value> = (0..60)
        .map(|i| json!({"ImageId": format!("img-{i:02}"), "CreationTime": if i < 50 { "2024-05-01T10:00:00Z" } else { "2024-05-01T11:00:00Z" }}))
        .collect();
    let c = Catalog::from_values(values).unwrap();
    let index = Index::build(&c);
    let req = request(&[("PageSize", "100"), ("SortBy", "CreationTime:Asc")]);
    let orders: BTreeSet<Vec<String>> = (0..8u64)
        .map(|salt| {
            let (total, page) = select(&index, &req, Some(salt));
            assert_eq!(total, 60);
            let got = ids(&index, &page);
            let (tied, later) = got.split_at(50);
            assert!(tied.iter().all(|id| id.as_str() < "img-50") && later.iter().all(|id| id.as_str() >= "img-50"));
            got
        })
        .collect();
    assert!(orders.len() > 1, "ties came out in the same order under every salt");
    // Without the fault, the same request gives the same page every time.
    let (_, a) = select(&index, &req, None);
    let (_, b) = select(&index, &req, None);
    assert_eq!(a, b);
}

#[test]
fn fields_fill_the_image_object_and_absent_stays_absent() {
    let c = catalog();
    let index = Index::build(&c);
    let req = request(&[("Match", "ImageId in ('t-c','late','no-time')"), ("SortBy", "CreationTime:Asc")]);
    let (total, page) = select(&index, &req, None);
    let basic = render(&c, &index, &req, total, &page);
    assert_eq!(
        basic,
        json!({"Total": 3, "MediaList": [
            {"MediaType": "image", "MediaId": "t-c", "CreationTime": "2024-05-01T10:00:00Z",
             "Image": {"ImageId": "t-c", "CreationTime": "2024-05-01T10:00:00Z"}},
            {"MediaType": "image", "MediaId": "late", "CreationTime": "2024-05-01T10:00:01Z",
             "Image": {"ImageId": "late", "CreationTime": "2024-05-01T10:00:01Z"}},
            {"MediaType": "image", "MediaId": "no-time", "Image": {"ImageId": "no-time"}},
        ]})
    );
    let req = request(&[
        ("Match", "ImageId in ('t-c','late')"),
        ("SortBy", "CreationTime:Asc"),
        ("Fields", "Title,CateId,CateName,Status,Description"),
    ]);
    let (total, page) = select(&index, &req, None);
    let full = render(&c, &index, &req, total, &page);
    assert_eq!(
        full["MediaList"][0]["Image"],
        json!({"ImageId": "t-c", "CreationTime": "2024-05-01T10:00:00Z", "Title": "c", "CateId": 1, "CateName": "A", "Status": "Normal"})
    );
    // A CateId kept as a string in the catalog is answered as the model's long.
    assert_eq!(
        full["MediaList"][1]["Image"],
        json!({"ImageId": "late", "CreationTime": "2024-05-01T10:00:01Z", "CateId": 2, "Status": "Uploading"})
    );
}

#[test]
fn other_search_types_find_nothing() {
    let c = catalog();
    let index = Index::build(&c);
    for p in [params(&[]), params(&[("SearchType", "video"), ("Match", "VideoId = 'x'"), ("Fields", "CoverURL")])] {
        let req = parse_request(&p).unwrap();
        assert!(!req.image);
        let (total, page) = select(&index, &req, None);
        assert_eq!(render(&c, &index, &req, total, &page), json!({"Total": 0, "MediaList": []}));
    }
}

#[test]
fn stats_count_pages_repeats_queries_and_refusals() {
    let s = SearchState::default();
    let a = request(&[("Match", "CateId = 1"), ("PageNo", "3"), ("PageSize", "20")]);
    let b = request(&[("Match", "CateId = 1"), ("PageNo", "4"), ("PageSize", "20")]);
    let c = request(&[("Match", "CateId = 2")]);
    for r in [&a, &b, &a, &a, &c] {
        s.asked(r);
        s.answered(r);
    }
    s.refused(&parse_request(&image_params(&[("PageNo", "51"), ("PageSize", "100")])).unwrap_err());
    s.refused(&parse_request(&image_params(&[("PageSize", "101")])).unwrap_err());
    assert_eq!(s.stats(), SearchStats { pages: 5, max_page_end: 5100, over_limit: 1, duplicate_pages: 1, queries: 2 });
}
