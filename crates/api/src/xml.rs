//! XML as the Query protocol writes it: a small builder for responses and a small tree for
//! reading them (the client side).

use quick_xml::escape::escape;

/// Builds an XML document element by element.
#[derive(Default)]
pub struct XmlOut {
    buf: String,
    stack: Vec<String>,
}

impl XmlOut {
    pub fn new() -> XmlOut {
        XmlOut::default()
    }

    /// Opens `<name>` (with an `xmlns` when given).
    pub fn open(&mut self, name: &str, xmlns: Option<&str>) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        if let Some(ns) = xmlns {
            self.buf.push_str(" xmlns=\"");
            self.buf.push_str(&escape(ns));
            self.buf.push('"');
        }
        self.buf.push('>');
        self.stack.push(name.to_string());
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.stack.pop() {
            self.buf.push_str("</");
            self.buf.push_str(&name);
            self.buf.push('>');
        }
        self
    }

    /// `<name>text</name>`.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self.buf.push_str(&escape(text));
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>text</name>` when there is a text.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.text(name, t);
        }
        self
    }

    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.text(name, if value { "true" } else { "false" })
    }

    /// `<name><member>...</member>...</name>` with each member written by `f`.
    pub fn members<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut XmlOut, T),
    ) -> &mut Self {
        self.open(name, None);
        for item in items {
            self.open("member", None);
            f(self, item);
            self.close();
        }
        self.close()
    }

    /// `<name><member>s</member>...</name>`.
    pub fn strings<'a>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'a String>,
    ) -> &mut Self {
        self.open(name, None);
        for s in items {
            self.text("member", s);
        }
        self.close()
    }

    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.buf
    }
}

/// A parsed XML element: name, text (of leaf elements) and children.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct XmlNode {
    pub name: String,
    pub text: String,
    pub children: Vec<XmlNode>,
}

impl XmlNode {
    /// Parses a document into its root element.
    pub fn parse(xml: &str) -> Result<XmlNode, String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack: Vec<(XmlNode, String)> = Vec::new();
        let mut root = None;
        loop {
            match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => {
                    let name = e.local_name().as_ref().to_string();
                    stack.push((XmlNode { name, ..XmlNode::default() }, String::new()));
                }
                Event::Empty(e) => {
                    let name = e.local_name().as_ref().to_string();
                    let node = XmlNode { name, ..XmlNode::default() };
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
                Event::Text(t) => {
                    if let Some((_, raw)) = stack.last_mut() {
                        raw.push_str(&t.xml10_content());
                    }
                }
                Event::CData(t) => {
                    if let Some((_, raw)) = stack.last_mut() {
                        let text = t.into_inner().into_owned();
                        raw.push_str(&escape(&text));
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some((_, raw)) = stack.last_mut() {
                        raw.push('&');
                        raw.push_str(&r.xml10_content());
                        raw.push(';');
                    }
                }
                Event::End(_) => {
                    let Some((mut node, raw)) = stack.pop() else { break };
                    node.text =
                        quick_xml::escape::unescape(&raw).map(|c| c.into_owned()).unwrap_or(raw);
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        root.ok_or_else(|| "empty XML document".to_string())
    }

    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Follows a `/`-separated path of child names.
    pub fn path(&self, path: &str) -> Option<&XmlNode> {
        path.split('/').try_fold(self, |node, part| node.child(part))
    }

    /// The text of the element at `path`, if present.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.path(path).map(|n| n.text.as_str())
    }

    /// The `member` children of the element at `path`.
    pub fn members(&self, path: &str) -> Vec<&XmlNode> {
        self.path(path)
            .map(|n| n.children.iter().filter(|c| c.name == "member").collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut x = XmlOut::new();
        x.open("R", Some("http://example.com/doc/"));
        x.text("A", "a < b & \"c\"");
        x.members("L", ["1", "2"], |x, s| {
            x.text("V", s);
        });
        let xml = x.finish();
        assert_eq!(
            xml,
            r#"<R xmlns="http://example.com/doc/"><A>a &lt; b &amp; &quot;c&quot;</A><L><member><V>1</V></member><member><V>2</V></member></L></R>"#
        );
        let node = XmlNode::parse(&xml).unwrap();
        assert_eq!(node.get("A"), Some("a < b & \"c\""));
        assert_eq!(
            node.members("L").iter().map(|m| m.get("V").unwrap()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!(XmlNode::parse("").is_err());
    }
}
