//! `RawObject`: a JSON object whose values stay unparsed source text. Reading a few fields and
//! rewriting one (the model name) costs one validating scan and a copy, and every other field,
//! known or not, survives byte for byte.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;

#[derive(Debug, Clone, Default)]
pub struct RawObject {
    fields: Vec<(String, Box<RawValue>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
}

impl RawObject {
    /// Parses a JSON object. Duplicate keys are refused: which one an upstream would read is
    /// undefined, so passing them on could bill one model and run another.
    pub fn parse(bytes: &[u8]) -> Result<Self, JsonError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Err(JsonError::NotObject),
                Err(e) => Err(JsonError::Syntax(e.to_string())),
            };
        }
        let obj: RawObject =
            serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
        for (i, (k, _)) in obj.fields.iter().enumerate() {
            if obj.fields[..i].iter().any(|(prev, _)| prev == k) {
                return Err(JsonError::DuplicateField(k.clone()));
            }
        }
        Ok(obj)
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Deserializes one field; `Ok(None)` when absent or `null`.
    pub fn get_as<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Result<Option<T>, String> {
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

    pub fn set_raw(&mut self, key: &str, raw: Box<RawValue>) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = raw,
            None => self.fields.push((key.to_owned(), raw)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }

    /// Serializes back to compact JSON, values verbatim.
    pub fn to_vec(&self) -> Vec<u8> {
        let size = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>()
            + 2;
        let mut out = Vec::with_capacity(size);
        // Writing to a Vec cannot fail; an error here would mean a broken RawValue.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.clear();
            out.extend_from_slice(b"{}");
        }
        out
    }
}

impl Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((k, v));
                }
                Ok(RawObject { fields })
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
    fn typed_reads_report_the_field() {
        let o = RawObject::parse(br#"{"stream":"yes","n":null}"#).unwrap();
        assert!(o.get_as::<bool>("stream").unwrap_err().contains("`stream`"));
        assert_eq!(o.get_as::<u32>("n").unwrap(), None);
        assert_eq!(o.get_as::<u32>("absent").unwrap(), None);
    }
}
