//! Reading `GetMediaAuditResult`'s answer: the machine's suggestion, taken
//! from the strictest part of the answer, and every reason it gives.
//!
//! The answer is the **automated** moderation result (vod-openapi.md §9; the
//! official models alibabacloud-go-sdk / alibabacloud-java-sdk `vod-20170321`
//! `GetMediaAuditResultResponseBody`). Its verdict can sit in any part: the
//! top-level `Suggestion`, an `ImageResult` and its scenes, a `TextResult`
//! (an image blocked for its title alone shows it only there and in
//! `AbnormalModules: text-title`), an `AudioResult`, the `VideoResult` and its
//! five sub-results. A `block` anywhere is a block.
//!
//! The values are matched trimmed and without regard to case (the model says
//! lower case; a gateway that says `BLOCK` must not turn a block into
//! nothing); a value that is none of `block`, `review`, `pass` is kept, named
//! in [`ModerationReading::unrecognised`], and never read as a pass. What the
//! machine's suggestion means next to the account's own decision
//! (`AuditStatus`) is `report::verdict`'s business, not this module's.

use super::model::{LabelledPart, MediaAuditResult};

/// The machine's suggestion, ordered from the mildest to the strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suggestion {
    Pass,
    Review,
    Block,
}

impl Suggestion {
    /// `block`, `review` or `pass`, trimmed, in any case; anything else none.
    pub fn parse(raw: &str) -> Option<Suggestion> {
        let t = raw.trim();
        [("pass", Suggestion::Pass), ("review", Suggestion::Review), ("block", Suggestion::Block)]
            .into_iter()
            .find_map(|(word, s)| t.eq_ignore_ascii_case(word).then_some(s))
    }

    /// The model's own word.
    pub fn as_str(self) -> &'static str {
        match self {
            Suggestion::Pass => "pass",
            Suggestion::Review => "review",
            Suggestion::Block => "block",
        }
    }
}

/// What one `GetMediaAuditResult` answer says, as the reports need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModerationReading {
    /// The top-level `Suggestion` exactly as answered; none when absent or
    /// empty.
    pub suggestion: Option<String>,
    /// The strictest recognised suggestion of any part; none when no part
    /// suggests anything (a medium never reviewed).
    pub strictest: Option<Suggestion>,
    /// Suggestions that are not `block`, `review` or `pass`, as
    /// `Part.Suggestion=value` (the raw value), once each.
    pub unrecognised: Vec<String>,
    /// Every reason as `module:label` (`image-cover:porn`, `text-title:ad`),
    /// `normal` and the labels of parts that passed left out; sorted, once
    /// each.
    pub reasons: Vec<String>,
    /// `AbnormalModules` as answered; none when absent or empty.
    pub abnormal_modules: Option<String>,
}

impl MediaAuditResult {
    /// Reads every part of the answer.
    pub fn read(&self) -> ModerationReading {
        let mut r = Reader::default();
        let top = r.part("Suggestion", self.suggestion.as_deref());
        for image in &self.image_result {
            let module = module_name("image", image.kind.as_deref());
            let s = r.part("ImageResult.Suggestion", image.suggestion.as_deref());
            r.labels(&module, image.label.as_deref(), s);
            for scene in &image.result {
                r.labelled(&module, "ImageResult.Result.Suggestion", scene);
            }
        }
        for text in &self.text_result {
            let module = module_name("text", text.kind.as_deref());
            let s = r.part("TextResult.Suggestion", text.suggestion.as_deref());
            r.labels(&module, text.label.as_deref(), s);
        }
        for audio in &self.audio_result {
            r.labelled("audio", "AudioResult.Suggestion", audio);
        }
        if let Some(video) = &self.video_result {
            let s = r.part("VideoResult.Suggestion", video.suggestion.as_deref());
            r.labels("video", video.label.as_deref(), s);
            for (name, sub) in [
                ("AdResult", &video.ad_result),
                ("LiveResult", &video.live_result),
                ("LogoResult", &video.logo_result),
                ("PornResult", &video.porn_result),
                ("TerrorismResult", &video.terrorism_result),
            ] {
                if let Some(sub) = sub {
                    r.labelled("video", &format!("VideoResult.{name}.Suggestion"), sub);
                }
            }
        }
        let abnormal_modules = nonempty(self.abnormal_modules.as_deref());
        // The top-level labels say why too; one that no part names is
        // credited to the only abnormal module when there is one, else to
        // the medium as a whole.
        let modules: Vec<&str> = abnormal_modules
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        let top_module = match modules.as_slice() {
            [one] => (*one).to_owned(),
            _ => "media".to_owned(),
        };
        if top != Some(Suggestion::Pass) {
            for label in labels_of(self.label.as_deref()) {
                let named = r.reasons.iter().any(|reason| reason.rsplit_once(':').is_some_and(|(_, l)| l == label));
                if !named {
                    r.reasons.push(reason(&top_module, &label));
                }
            }
        }
        r.reasons.sort();
        r.reasons.dedup();
        r.unrecognised.sort();
        r.unrecognised.dedup();
        ModerationReading {
            suggestion: nonempty(self.suggestion.as_deref()),
            strictest: r.strictest,
            unrecognised: r.unrecognised,
            reasons: r.reasons,
            abnormal_modules,
        }
    }
}

#[derive(Default)]
struct Reader {
    strictest: Option<Suggestion>,
    unrecognised: Vec<String>,
    reasons: Vec<String>,
}

impl Reader {
    /// Notes one part's suggestion; its reading, when recognised.
    fn part(&mut self, name: &str, raw: Option<&str>) -> Option<Suggestion> {
        let raw = raw.filter(|r| !r.trim().is_empty())?;
        match Suggestion::parse(raw) {
            Some(s) => {
                self.strictest = self.strictest.max(Some(s));
                Some(s)
            }
            None => {
                self.unrecognised.push(format!("{name}={raw}"));
                None
            }
        }
    }

    /// A part's labels, unless the part passed.
    fn labels(&mut self, module: &str, labels: Option<&str>, suggestion: Option<Suggestion>) {
        if suggestion == Some(Suggestion::Pass) {
            return;
        }
        for label in labels_of(labels) {
            self.reasons.push(reason(module, &label));
        }
    }

    fn labelled(&mut self, module: &str, name: &str, part: &LabelledPart) {
        let s = self.part(name, part.suggestion.as_deref());
        self.labels(module, part.label.as_deref(), s);
    }
}

/// `image-cover`, `text-title`: the names `AbnormalModules` uses.
fn module_name(kind: &str, sub: Option<&str>) -> String {
    match sub.map(str::trim).filter(|s| !s.is_empty()) {
        Some(sub) => format!("{kind}-{}", sub.to_ascii_lowercase()),
        None => kind.to_owned(),
    }
}

/// The labels of a comma list, trimmed, `normal` left out.
fn labels_of(list: Option<&str>) -> impl Iterator<Item = String> + '_ {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("normal"))
        .map(str::to_owned)
}

/// `module:label`, with `%` and `;` (the reasons' separator in a report
/// cell) percent-escaped, so that a hostile label cannot forge a second
/// reason.
fn reason(module: &str, label: &str) -> String {
    let escape = |s: &str| s.replace('%', "%25").replace(';', "%3B");
    format!("{}:{}", escape(module), escape(label))
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> ModerationReading {
        serde_json::from_str::<MediaAuditResult>(json).unwrap().read()
    }

    #[test]
    fn suggestions_are_read_trimmed_in_any_case() {
        for (raw, want) in [
            ("block", Some(Suggestion::Block)),
            ("BLOCK", Some(Suggestion::Block)),
            (" block ", Some(Suggestion::Block)),
            ("Review", Some(Suggestion::Review)),
            ("pass\n", Some(Suggestion::Pass)),
            ("blocked", None),
            ("", None),
        ] {
            assert_eq!(Suggestion::parse(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn an_image_blocked_for_its_title_alone_says_so() {
        // The official model's shape of a title block: the image passed, the
        // title did not.
        let r = read(
            r#"{"Suggestion": "block", "Label": "ad", "AbnormalModules": "text-title",
                "ImageResult": [{"Type": "cover", "Suggestion": "pass", "Label": "normal",
                    "Result": [{"Scene": "porn", "Label": "normal", "Suggestion": "pass", "Score": "0.1"}]}],
                "TextResult": [{"Type": "title", "Scene": "antispam", "Label": "ad", "Suggestion": "block",
                    "Content": "buy now", "Score": "99.9"}]}"#,
        );
        assert_eq!(r.strictest, Some(Suggestion::Block));
        assert_eq!(r.reasons, ["text-title:ad"]);
        assert_eq!(r.abnormal_modules.as_deref(), Some("text-title"));
        assert!(r.unrecognised.is_empty());
    }

    #[test]
    fn a_block_in_any_part_is_a_block_and_every_part_gives_its_reason() {
        let r = read(
            r#"{"Suggestion": "pass", "Label": "",
                "ImageResult": [{"Type": "cover", "Suggestion": "pass", "Label": "normal",
                    "Result": [{"Scene": "terrorism", "Label": "bloody", "Suggestion": "BLOCK"}]}],
                "AudioResult": [{"Label": "abuse", "Suggestion": "review"}],
                "VideoResult": {"Suggestion": "review", "Label": "porn",
                    "PornResult": {"Label": "sexy", "Suggestion": "review"},
                    "AdResult": {"Label": "normal", "Suggestion": "pass"}}}"#,
        );
        assert_eq!(r.strictest, Some(Suggestion::Block), "a block only in a scene");
        assert_eq!(r.suggestion.as_deref(), Some("pass"), "the raw top-level value is kept");
        assert_eq!(r.reasons, ["audio:abuse", "image-cover:bloody", "video:porn", "video:sexy"]);
    }

    #[test]
    fn unknown_values_are_named_never_read_as_pass() {
        let r = read(r#"{"Suggestion": "maybe", "ImageResult": [{"Suggestion": "pass", "Label": "porn"}]}"#);
        assert_eq!(r.strictest, Some(Suggestion::Pass));
        assert_eq!(r.unrecognised, ["Suggestion=maybe"]);
        assert!(r.reasons.is_empty(), "a part that passed gives no reason: {:?}", r.reasons);
    }

    #[test]
    fn top_level_labels_no_part_names_are_kept() {
        let r = read(r#"{"Suggestion": "block", "Label": "porn,normal", "AbnormalModules": "image-cover"}"#);
        assert_eq!(r.reasons, ["image-cover:porn"]);
        let r = read(r#"{"Suggestion": "review", "Label": "flood", "AbnormalModules": "video,text-title"}"#);
        assert_eq!(r.reasons, ["media:flood"]);
        let r = read(r#"{"Suggestion": "block"}"#);
        assert!(r.reasons.is_empty(), "no label named: the report says unspecified, not this reader");
        let r = read(r#"{"Suggestion": "block", "Label": "a;b%"}"#);
        assert_eq!(r.reasons, ["media:a%3Bb%25"], "a label cannot forge a second reason");
    }

    #[test]
    fn a_medium_never_reviewed_suggests_nothing() {
        let r = read("{}");
        assert_eq!(r, ModerationReading::default());
        let r = read(r#"{"Suggestion": "", "ImageResult": null, "TextResult": null}"#);
        assert_eq!(r.strictest, None);
        assert!(r.unrecognised.is_empty());
    }
}
