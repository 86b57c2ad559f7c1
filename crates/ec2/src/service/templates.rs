//! Launch templates with their versions, and images made from instances: one set of
//! operations for the API and CloudFormation.

use super::*;

fn rejected(code: &'static str, message: impl Into<String>) -> Ec2Error {
    Ec2Error::Rejected { code, message: message.into() }
}

fn no_template(id_or_name: &str) -> Ec2Error {
    if id_or_name.starts_with("lt-") {
        rejected(
            "InvalidLaunchTemplateId.NotFound",
            format!(
                "The specified launch template, with template ID {id_or_name}, does not exist."
            ),
        )
    } else {
        rejected(
            "InvalidLaunchTemplateName.NotFoundException",
            format!(
                "The specified launch template, with template name {id_or_name}, does not exist."
            ),
        )
    }
}

/// Copies a directory tree (regular files, directories and symlinks).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// What an instance's directory holds that is the machine's own, not its disk's.
const NOT_ON_DISK: &[&str] = &["console.log", "user-data", "app.pid"];

impl Ec2 {
    // === launch templates ===

    pub fn launch_templates(&self) -> Result<Vec<LaunchTemplateRecord>, Ec2Error> {
        Ok(self
            .store
            .list::<LaunchTemplateRecord>(LAUNCH_TEMPLATES, "")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn existing_template(&self, id_or_name: &str) -> Result<LaunchTemplateRecord, Ec2Error> {
        self.launch_template(id_or_name)?.ok_or_else(|| no_template(id_or_name))
    }

    /// CreateLaunchTemplate: version 1, the default. `logical_id` names the stack resource
    /// (what overrides files name).
    pub fn create_launch_template(
        &self,
        name: &str,
        data: Json,
        description: Option<String>,
        tags: IndexMap<String, String>,
        logical_id: Option<String>,
    ) -> Result<LaunchTemplateRecord, Ec2Error> {
        if name.len() < 3 || name.len() > 128 {
            return Err(rejected(
                "InvalidLaunchTemplateName.MalformedException",
                "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'",
            ));
        }
        if self.launch_templates()?.iter().any(|t| t.name == name) {
            return Err(rejected(
                "InvalidLaunchTemplateName.AlreadyExistsException",
                format!("Launch template name already in use: {name}"),
            ));
        }
        let record = LaunchTemplateRecord {
            id: aws_ids::ec2_id("lt"),
            name: name.to_string(),
            created: [(1, (clock::iso8601(self.clock.now()), description))].into(),
            tags,
            versions: [(1, data)].into(),
            default_version: 1,
            logical_id,
        };
        self.store.put(LAUNCH_TEMPLATES, &record.id, &record)?;
        Ok(record)
    }

    /// CreateLaunchTemplateVersion: `data` over the source version's (when one is named).
    pub fn create_launch_template_version(
        &self,
        id_or_name: &str,
        source: Option<&str>,
        data: Json,
        description: Option<String>,
    ) -> Result<(LaunchTemplateRecord, u32), Ec2Error> {
        let mut t = self.existing_template(id_or_name)?;
        let mut merged = match source {
            Some(v) => {
                let n = t.resolve_version(Some(v)).ok_or_else(|| {
                    rejected(
                        "InvalidLaunchTemplateId.VersionNotFound",
                        format!("Could not find launch template version {v}"),
                    )
                })?;
                t.versions.get(&n).cloned().unwrap_or(Json::Null)
            }
            None => Json::Object(Default::default()),
        };
        if let (Some(base), Json::Object(new)) = (merged.as_object_mut(), data) {
            base.extend(new);
        }
        let next = t.latest() + 1;
        t.versions.insert(next, merged);
        t.created.insert(next, (clock::iso8601(self.clock.now()), description));
        self.store.put(LAUNCH_TEMPLATES, &t.id, &t)?;
        Ok((t, next))
    }

    /// ModifyLaunchTemplate's default version.
    pub fn set_default_version(
        &self,
        id_or_name: &str,
        version: &str,
    ) -> Result<LaunchTemplateRecord, Ec2Error> {
        let mut t = self.existing_template(id_or_name)?;
        t.default_version = t.resolve_version(Some(version)).ok_or_else(|| {
            rejected(
                "InvalidLaunchTemplateId.VersionNotFound",
                format!("Could not find launch template version {version}"),
            )
        })?;
        self.store.put(LAUNCH_TEMPLATES, &t.id, &t)?;
        Ok(t)
    }

    /// CloudFormation's update of a template: changed data is a new version, the default.
    pub fn put_launch_template_data(
        &self,
        id: &str,
        name: &str,
        data: Json,
        logical_id: Option<String>,
    ) -> Result<LaunchTemplateRecord, Ec2Error> {
        let mut record = match self.launch_template(id)? {
            Some(r) => r,
            None => LaunchTemplateRecord {
                id: id.to_string(),
                name: name.to_string(),
                created: BTreeMap::new(),
                tags: IndexMap::new(),
                versions: BTreeMap::new(),
                default_version: 1,
                logical_id: None,
            },
        };
        record.logical_id = logical_id;
        if record.versions.get(&record.latest()) != Some(&data) {
            let next = if record.versions.is_empty() { 1 } else { record.latest() + 1 };
            record.versions.insert(next, data);
            record.created.insert(next, (clock::iso8601(self.clock.now()), None));
            record.default_version = next;
        }
        record.name = name.to_string();
        self.store.put(LAUNCH_TEMPLATES, &record.id, &record)?;
        Ok(record)
    }

    pub fn delete_launch_template(
        &self,
        id_or_name: &str,
    ) -> Result<LaunchTemplateRecord, Ec2Error> {
        let t = self.existing_template(id_or_name)?;
        self.store.delete(LAUNCH_TEMPLATES, &t.id)?;
        Ok(t)
    }

    // === images ===

    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>, Ec2Error> {
        Ok(self.store.get(IMAGES, id)?)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, Ec2Error> {
        Ok(self.store.list::<ImageRecord>(IMAGES, "")?.into_iter().map(|(_, r)| r).collect())
    }

    /// CreateImage: the instance's files as they are now, and what it was launched with.
    pub fn create_image(
        &self,
        instance: &str,
        name: &str,
        description: Option<String>,
        tags: IndexMap<String, String>,
    ) -> Result<ImageRecord, Ec2Error> {
        let source =
            self.instance(instance)?.ok_or_else(|| Ec2Error::NoSuchInstance(instance.into()))?;
        if source.state == InstanceState::Terminated {
            return Err(rejected(
                "IncorrectInstanceState",
                format!("The instance '{instance}' is not in a state from which it can be imaged."),
            ));
        }
        if self.images()?.iter().any(|i| i.name == name) {
            return Err(rejected(
                "InvalidAMIName.Duplicate",
                format!("AMI name {name} is already in use by AMI"),
            ));
        }
        let id = aws_ids::ec2_id("ami");
        let files = self.config.runtime_dir.join("images").join(&id);
        let copied = copy_tree(&source.dir, &files).map(|()| {
            for name in NOT_ON_DISK {
                let _ = std::fs::remove_file(files.join(name));
            }
        });
        copied.map_err(|e| Ec2Error::Launch(format!("cannot copy the instance's files: {e}")))?;
        let record = ImageRecord {
            id: id.clone(),
            name: name.to_string(),
            description,
            source_instance: instance.to_string(),
            user_data: source.user_data.clone(),
            ports: source.ports.iter().map(|p| p.expected).collect(),
            files,
            created: clock::iso8601(self.clock.now()),
            tags,
        };
        self.store.put(IMAGES, &id, &record)?;
        Ok(record)
    }

    pub fn deregister_image(&self, id: &str) -> Result<(), Ec2Error> {
        let image = self.image(id)?.ok_or_else(|| {
            rejected("InvalidAMIID.NotFound", format!("The image id '[{id}]' does not exist"))
        })?;
        self.store.delete(IMAGES, id)?;
        let _ = std::fs::remove_dir_all(&image.files);
        Ok(())
    }

    /// An instance launched from an image starts from its files.
    pub(super) fn unpack_image(
        &self,
        image: &ImageRecord,
        dir: &std::path::Path,
    ) -> Result<(), Ec2Error> {
        copy_tree(&image.files, dir)
            .map_err(|e| Ec2Error::Launch(format!("cannot unpack image {}: {e}", image.id)))
    }
}
