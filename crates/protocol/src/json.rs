//! `RawObject`: a JSON object whose values stay unparsed source text. Reading a few fields and
//! rewriting one (the model name) costs one validating scan and a copy, and every other field,
//! known or not, survives byte for byte. `RawMap::borrowed` does the same without copying:
//! keys and values stay slices of the source (an answer or a stream chunk rewritten on its
//! way through).

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON object's fields, keys and values borrowed from `'a` or owned.
#[derive(Debug, Clone, Default)]
pub struct RawMap<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
    /// The text the fields were read from, while they still say exactly what it says: set by
    /// `borrowed`, dropped by the first edit. `splice_into` copies from it.
    source: Option<&'a [u8]>,
}

/// A value `RawMap::splice_into` sets: a string (escaped as it is written) or JSON text.
#[derive(Debug, Clone, Copy)]
pub enum Splice<'a> {
    Str(&'a str),
    Json(&'a str),
}

impl Splice<'_> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Splice::Str(s) => write_string(out, s),
            Splice::Json(j) => out.extend_from_slice(j.as_bytes()),
        }
    }

    fn len(self) -> usize {
        match self {
            Splice::Str(s) | Splice::Json(s) => s.len(),
        }
    }
}

/// A `RawMap` that owns its text.
pub type RawObject = RawMap<'static>;

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
}

impl RawMap<'static> {
    /// Parses a JSON object into owned fields.
    pub fn parse(bytes: &[u8]) -> Result<Self, JsonError> {
        RawMap::borrowed(bytes).map(RawMap::into_owned)
    }
}

impl<'a> RawMap<'a> {
    /// Parses a JSON object whose fields borrow from `bytes`. Duplicate keys are refused:
    /// which one an upstream would read is undefined, so passing them on could bill one model
    /// and run another.
    pub fn borrowed(bytes: &'a [u8]) -> Result<Self, JsonError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Err(JsonError::NotObject),
                Err(e) => Err(JsonError::Syntax(e.to_string())),
            };
        }
        // UTF-8 is checked once, here, over the whole body: parsing bytes would check each
        // string and each raw value again on its own.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            JsonError::Syntax(format!(
                "invalid UTF-8 at byte {} of the body",
                e.valid_up_to()
            ))
        })?;
        let mut obj: RawMap<'a> =
            serde_json::from_str(text).map_err(|e| JsonError::Syntax(e.to_string()))?;
        for (i, (k, _)) in obj.fields.iter().enumerate() {
            if obj.fields[..i].iter().any(|(prev, _)| prev == k) {
                return Err(JsonError::DuplicateField(k.to_string()));
            }
        }
        obj.source = Some(bytes);
        Ok(obj)
    }

    /// The same fields, copied out of the source.
    pub fn into_owned(self) -> RawObject {
        RawMap {
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
            source: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Deserializes one field; `Ok(None)` when absent or `null`.
    pub fn get_as<'s, T: Deserialize<'s>>(&'s self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|e| format!("field `{key}` is invalid: {e}")),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets a field to a serialized value, in place if present, else appended.
    pub fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        let Ok(raw) = serde_json::value::to_raw_value(value) else {
            return;
        };
        self.set_raw(key, raw);
    }

    /// `set` for a string value, without a trip through serde's serializer (which also
    /// reallocates to shrink its buffer): the field a relay rewrites on every request and
    /// every stream chunk.
    pub fn set_str(&mut self, key: &str, value: &str) {
        let mut text = Vec::with_capacity(value.len() + 2);
        write_string(&mut text, value);
        let raw = String::from_utf8(text).map(RawValue::from_string);
        if let Ok(Ok(raw)) = raw {
            self.set_raw(key, raw);
        }
    }

    pub fn set_raw(&mut self, key: &str, raw: Box<RawValue>) {
        self.source = None;
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = Cow::Owned(raw),
            None => self
                .fields
                .push((Cow::Owned(key.to_owned()), Cow::Owned(raw))),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        self.source = None;
        Some(self.fields.remove(i).1.into_owned())
    }

    /// Serializes back to compact JSON, values verbatim. Sized exactly when no key needs
    /// escaping, so that the bytes become a `Bytes` body without another allocation.
    pub fn to_vec(&self) -> Vec<u8> {
        // `"key":value` for each field, the commas between them, the braces.
        let size = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 3)
            .sum::<usize>()
            + self.fields.len().saturating_sub(1)
            + 2;
        let mut out = Vec::with_capacity(size);
        out.push(b'{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(&mut out, k);
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
        out.push(b'}');
        out
    }

    /// Appends the text this map was read from (`borrowed`) to `out` with fields set: each
    /// of `set` replaces that field's value where it is, or is added before the closing brace
    /// when absent. Every other byte is copied as it came, whitespace included, without
    /// writing the map out again field by field (`to_vec`): what a relay does to every
    /// request, answer and stream chunk. Returns false, having written nothing, once the map
    /// has been edited (or was never borrowed): its source no longer says what it holds.
    pub fn splice_into(&self, set: &[(&str, Splice<'_>)], out: &mut Vec<u8>) -> bool {
        const MAX_SET: usize = 4;
        let Some(source) = self.source else {
            return false;
        };
        let Some(close) = source.iter().rposition(|&b| b == b'}') else {
            return false;
        };
        if set.len() > MAX_SET {
            return false;
        }
        // Where each present field's value lies in `source`, in `set`'s order.
        let mut at = [None::<(usize, usize)>; MAX_SET];
        for (slot, (key, _)) in at.iter_mut().zip(set) {
            if let Some(v) = self.get(key) {
                let Some(start) = offset_in(source, v.get().as_bytes()) else {
                    return false;
                };
                *slot = Some((start, start + v.get().len()));
            }
        }
        out.reserve(
            source.len()
                + set
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 6)
                    .sum::<usize>(),
        );
        let mut copied = 0;
        // Replacements in the order they appear in the source; `set` is a handful at most.
        let mut done = [false; MAX_SET];
        while let Some(i) = (0..set.len())
            .filter(|&i| !done[i])
            .filter_map(|i| at[i].map(|(start, _)| (start, i)))
            .min()
            .map(|(_, i)| i)
        {
            done[i] = true;
            let Some((start, end)) = at[i] else { break };
            out.extend_from_slice(&source[copied..start]);
            set[i].1.write(out);
            copied = end;
        }
        out.extend_from_slice(&source[copied..close]);
        let mut fields = self.fields.len();
        for (i, (key, value)) in set.iter().enumerate() {
            if at[i].is_none() {
                if fields > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                value.write(out);
                fields += 1;
            }
        }
        out.extend_from_slice(&source[close..]);
        true
    }

    /// `splice_into` a new buffer when the map is unedited, else the map written out with
    /// `set` applied to a copy: the body a relay sends on, either way.
    pub fn spliced(&self, set: &[(&str, Splice<'_>)]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.splice_into(set, &mut out) {
            return out;
        }
        let mut edited = self.clone();
        for (key, value) in set {
            match value {
                Splice::Str(s) => edited.set_str(key, s),
                Splice::Json(j) => {
                    if let Ok(raw) = RawValue::from_string((*j).to_owned()) {
                        edited.set_raw(key, raw);
                    }
                }
            }
        }
        edited.to_vec()
    }
}

/// Where `part` starts within `whole`, when it is a slice of it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// `s` as a JSON string: copied when nothing in it needs escaping (the usual case), else
/// escaped by serde_json.
fn write_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serializing a string cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A key borrowed from the source when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((k, Cow::Borrowed(v)));
                }
                Ok(RawMap {
                    fields,
                    source: None,
                })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_one_field_keeps_every_other_byte_and_the_order() {
        let body = br#"{"model":"fast","messages":[{"role":"user","content":"hi \u00e9"}],"tools":[{"type":"function"}],"future_field":{"x":1.50}}"#;
        let mut o = RawObject::parse(body).unwrap();
        assert_eq!(
            o.get_as::<String>("model").unwrap().as_deref(),
            Some("fast")
        );
        o.set("model", "gemma3:4b");
        assert_eq!(
            String::from_utf8(o.to_vec()).unwrap(),
            r#"{"model":"gemma3:4b","messages":[{"role":"user","content":"hi \u00e9"}],"tools":[{"type":"function"}],"future_field":{"x":1.50}}"#
        );
    }

    #[test]
    fn written_json_fills_its_buffer_exactly() {
        for body in [
            &br#"{}"#[..],
            br#"{"a":1}"#,
            br#"{"model":"m","n":[1,2],"o":{"p":null}}"#,
        ] {
            let v = RawMap::borrowed(body).unwrap().to_vec();
            assert_eq!(v, body);
            assert_eq!(v.capacity(), v.len(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn non_objects_syntax_errors_and_duplicates_are_refused() {
        assert!(matches!(
            RawObject::parse(b"[1]"),
            Err(JsonError::NotObject)
        ));
        assert!(matches!(
            RawObject::parse(b"\"x\""),
            Err(JsonError::NotObject)
        ));
        assert!(matches!(
            RawObject::parse(b"{\"a\":"),
            Err(JsonError::Syntax(_))
        ));
        assert!(matches!(RawObject::parse(b""), Err(JsonError::Syntax(_))));
        assert!(matches!(
            RawObject::parse(br#"{"model":"a","model":"b"}"#),
            Err(JsonError::DuplicateField(k)) if k == "model"
        ));
    }

    #[test]
    fn borrowed_and_owned_maps_read_and_write_the_same() {
        let body = br#"{"model":"m","a\u0062":[1, 2],"usage":{"x":1}}"#;
        let mut b = RawMap::borrowed(body).unwrap();
        let mut o = RawObject::parse(body).unwrap();
        assert_eq!(
            b.get("ab").map(RawValue::get),
            Some("[1, 2]"),
            "escaped key unescaped"
        );
        fn rewrite(mut m: RawMap<'_>) {
            m.set("model", "public");
            assert_eq!(m.remove("usage").unwrap().get(), r#"{"x":1}"#);
            assert_eq!(m.to_vec(), br#"{"model":"public","ab":[1, 2]}"#);
        }
        rewrite(b.clone());
        rewrite(o.clone());
        b.set("model", "x");
        o.set("model", "x");
        assert_eq!(b.to_vec(), o.to_vec());
        assert!(matches!(
            RawMap::borrowed(br#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateField(k)) if k == "a"
        ));
    }

    #[test]
    fn keys_that_need_escaping_are_written_escaped_and_bad_utf8_is_a_syntax_error() {
        let body = "{\"a\\\"b\":1,\"c\\\\d\":2,\"e\\u0001\":3,\"\u{e9}\":4}";
        let m = RawMap::borrowed(body.as_bytes()).unwrap();
        assert_eq!(m.get("a\"b").map(RawValue::get), Some("1"));
        assert_eq!(m.get("e\u{1}").map(RawValue::get), Some("3"));
        let mut m = m;
        m.set_str("q", "say \"hi\"\n\u{1}");
        assert_eq!(
            m.get_as::<String>("q").unwrap().as_deref(),
            Some("say \"hi\"\n\u{1}")
        );
        m.set_str("plain", "gemma3:4b");
        assert_eq!(m.get("plain").map(RawValue::get), Some("\"gemma3:4b\""));
        let again = RawMap::borrowed(&m.to_vec()).unwrap().to_vec();
        assert_eq!(again, m.to_vec());
        let mut expected = serde_json::from_str::<serde_json::Value>(body).unwrap();
        expected["q"] = "say \"hi\"\n\u{1}".into();
        expected["plain"] = "gemma3:4b".into();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&m.to_vec()).unwrap(),
            expected
        );
        assert!(matches!(
            RawMap::borrowed(b"{\"a\":\"\xff\"}"),
            Err(JsonError::Syntax(m)) if m == "invalid UTF-8 at byte 6 of the body"
        ));
    }

    #[test]
    fn splicing_sets_fields_and_keeps_every_other_byte() {
        use Splice::{Json, Str};
        let body = b"{\n  \"id\": \"x\",\n  \"model\": \"gemma3:4b\",\n  \"n\": [1, 2]\n}\n";
        let m = RawMap::borrowed(body).unwrap();
        let mut out = b"data: ".to_vec();
        assert!(m.splice_into(
            &[("model", Str("fast")), ("provider", Str("say \"hi\""))],
            &mut out
        ));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\n  \"id\": \"x\",\n  \"model\": \"fast\",\n  \"n\": [1, 2]\n,\"provider\":\"say \\\"hi\\\"\"}\n"
        );
        // Replacements are made in the source's order whatever the order asked; JSON values
        // go in as they are.
        let body = br#"{"provider":"a","x":{"model":"inner"},"model":"b"}"#;
        let m = RawMap::borrowed(body).unwrap();
        assert_eq!(
            m.spliced(&[
                ("model", Str("M")),
                ("provider", Json(r#"{"order":["p"]}"#))
            ]),
            br#"{"provider":{"order":["p"]},"x":{"model":"inner"},"model":"M"}"#
        );
        assert_eq!(
            RawMap::borrowed(b"{ }")
                .unwrap()
                .spliced(&[("p", Str("v"))]),
            br#"{ "p":"v"}"#
        );
        assert_eq!(RawMap::borrowed(body).unwrap().spliced(&[]), body);
    }

    #[test]
    fn an_edited_map_is_written_out_not_spliced() {
        use Splice::{Json, Str};
        let body = br#"{"model":"m", "route":"fallback","usage":{"total_tokens":3}}"#;
        let set = [("model", Str("pub")), ("opts", Json(r#"{"a":true}"#))];
        let mut m = RawMap::borrowed(body).unwrap();
        assert_eq!(
            m.spliced(&set),
            br#"{"model":"pub", "route":"fallback","usage":{"total_tokens":3},"opts":{"a":true}}"#
        );
        // A removed field must not come back from the source.
        assert!(m.remove("route").is_some());
        let mut out = Vec::new();
        assert!(!m.splice_into(&set, &mut out));
        assert!(out.is_empty());
        assert_eq!(
            m.spliced(&set),
            br#"{"model":"pub","usage":{"total_tokens":3},"opts":{"a":true}}"#
        );
        // Nor may a value set since, or a map that owns its text.
        let mut m = RawMap::borrowed(body).unwrap();
        m.set_str("model", "x");
        assert!(!m.splice_into(&[], &mut out));
        let owned = RawObject::parse(body).unwrap();
        assert!(!owned.splice_into(&[], &mut out));
        assert_eq!(
            owned.spliced(&[]),
            br#"{"model":"m","route":"fallback","usage":{"total_tokens":3}}"#
        );
        // Removing a field that is not there edits nothing.
        let mut m = RawMap::borrowed(body).unwrap();
        assert!(m.remove("absent").is_none());
        assert!(m.splice_into(&[], &mut out));
    }

    #[test]
    fn typed_reads_report_the_field() {
        let o = RawObject::parse(br#"{"stream":"yes","n":null}"#).unwrap();
        assert!(o.get_as::<bool>("stream").unwrap_err().contains("`stream`"));
        assert_eq!(o.get_as::<u32>("n").unwrap(), None);
        assert_eq!(o.get_as::<u32>("absent").unwrap(), None);
    }
}
