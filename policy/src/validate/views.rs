//! The `[[view]]` section: each view's sources and the fields they need, the listing
//! dates and active condition, grades, purposes and declared releases.

use toml::Spanned;

use crate::catalogue::Dataset;
use crate::location::Diagnostics;
use crate::policy::{ActiveIf, Grade, Purpose, RecordAge, View, ViewKind, ViewRelease, ViewSource};
use crate::transform::FieldTransform;
use crate::validate::names::{purpose_index, purpose_names};
use crate::validate::raw::RawView;

/// The declared views, in file order.
pub(crate) fn validate(
    raw: &[RawView],
    purposes: &[Purpose],
    datasets: &[&Dataset],
    diag: &mut Diagnostics<'_>,
) -> Vec<View> {
    let mut views: Vec<View> = Vec::new();
    for v in raw {
        let name = v.name.get_ref().clone();
        if views.iter().any(|w| w.name == name) {
            diag.error(v.name.span(), format!("view `{name}` is declared twice"));
        }
        let kind = *v.kind.get_ref();
        if v.sources.is_empty() {
            diag.error(v.name.span(), format!("view `{name}` has no sources; add `[[view.source]]` tables naming the datasets it needs"));
        }
        let mut sources: Vec<ViewSource> = Vec::new();
        for s in &v.sources {
            let Some(di) = datasets
                .iter()
                .position(|x| &x.qualified == s.dataset.get_ref())
            else {
                diag.error(s.dataset.span(), format!("unknown dataset `{}` in view `{name}`; expected `department.dataset` from the catalogue", s.dataset.get_ref()));
                continue;
            };
            let Some(dataset) = datasets.get(di) else {
                continue;
            };
            if sources.iter().any(|x| x.dataset == di) {
                diag.error(
                    s.dataset.span(),
                    format!(
                        "dataset `{}` appears twice in view `{name}`",
                        dataset.qualified
                    ),
                );
            }
            let mut needs = Vec::new();
            for (fname, t) in s.needs.get_ref() {
                let Some(fi) = dataset.field_index(fname) else {
                    diag.error(s.needs.span(), format!("unknown field `{fname}` in `needs` of view `{name}`; dataset `{}` has: {}", dataset.qualified, dataset.fields.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")));
                    continue;
                };
                match t.as_str().map(str::parse::<FieldTransform>) {
                    Some(Ok(t)) => {
                        if let Some(field) = dataset.fields.get(fi) {
                            if !t.applies_to(field) {
                                diag.error(
                                    s.needs.span(),
                                    format!(
                                        "view `{name}` needs `{t}` of field `{fname}` ({}), which it can never get; use one of: {}",
                                        crate::catalogue::type_name(field.ty),
                                        FieldTransform::ALL
                                            .iter()
                                            .filter(|x| x.applies_to(field))
                                            .map(|x| x.name())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                );
                            }
                        }
                        needs.push((fi, t));
                    }
                    Some(Err(e)) => diag.error(s.needs.span(), format!("field `{fname}`: {e}")),
                    None => diag.error(s.needs.span(), format!("field `{fname}` needs a transform name in quotes, e.g. `{fname} = \"exists\"`")),
                }
            }
            let mut field_ref = |r: &Option<Spanned<String>>, what: &str| -> Option<String> {
                let r = r.as_ref()?;
                if dataset.field_index(r.get_ref()).is_none() {
                    diag.error(
                        r.span(),
                        format!(
                            "`{what}` names unknown field `{}` of dataset `{}`",
                            r.get_ref(),
                            dataset.qualified
                        ),
                    );
                } else if !needs.iter().any(|(fi, _)| {
                    dataset
                        .fields
                        .get(*fi)
                        .is_some_and(|f| &f.name == r.get_ref())
                }) {
                    diag.error(
                        r.span(),
                        format!(
                            "`{what}` field `{}` must also be listed in `needs`",
                            r.get_ref()
                        ),
                    );
                }
                Some(r.get_ref().clone())
            };
            let since = field_ref(&s.since, "since");
            let until = field_ref(&s.until, "until");
            let active_if = s.active_if.as_ref().map(|a| {
                if dataset.field_index(a.field.get_ref()).is_none() {
                    diag.error(
                        a.field.span(),
                        format!(
                            "`active_if` names unknown field `{}` of dataset `{}`",
                            a.field.get_ref(),
                            dataset.qualified
                        ),
                    );
                }
                ActiveIf {
                    field: a.field.get_ref().clone(),
                    values: a.values.clone(),
                }
            });
            if kind == ViewKind::Blacklist && since.is_none() {
                diag.error(
                    s.dataset.span(),
                    format!(
                        "a blacklist source needs `since`, the listing date field of `{}`",
                        dataset.qualified
                    ),
                );
            }
            let max_record_age = s.max_record_age.as_ref().and_then(|a| {
                let parsed = RecordAge::parse(a.get_ref());
                if parsed.is_none() {
                    diag.error(
                        a.span(),
                        format!(
                            "record age `{}` is not understood; expected e.g. `1y`, `6m`, `90d`",
                            a.get_ref()
                        ),
                    );
                }
                parsed
            });
            if needs.is_empty() {
                diag.error(s.needs.span(), format!("view `{name}` source `{}` needs at least one field, e.g. `needs = {{ {} = \"exists\" }}`", dataset.qualified, dataset.key));
            }
            sources.push(ViewSource {
                dataset: di,
                dataset_name: dataset.qualified.clone(),
                label: s
                    .label
                    .clone()
                    .unwrap_or_else(|| dataset.description.clone()),
                needs,
                since,
                until,
                active_if,
                points_per_record: s.points_per_record,
                max_points: s.max_points,
                max_record_age,
            });
        }
        let clean_years = v.clean_years.unwrap_or(3);
        if kind == ViewKind::GreenChannel {
            // The view's own window: only records of the last `clean_years` count.
            for s in &mut sources {
                if s.max_record_age.is_none() {
                    s.max_record_age = Some(RecordAge::Years(clean_years));
                }
            }
        }
        let mut grades: Vec<Grade> = v
            .grades
            .iter()
            .map(|g| Grade {
                min_points: g.min_points,
                grade: g.grade.clone(),
            })
            .collect();
        grades.sort_by_key(|g| std::cmp::Reverse(g.min_points));
        if kind == ViewKind::IntegrityScore && grades.is_empty() {
            diag.error(v.name.span(), format!("integrity-score view `{name}` needs `[[view.grade]]` tables (min_points, grade)"));
        }
        let mut view_purposes = Vec::new();
        for p in &v.purposes {
            match purpose_index(purposes, p.get_ref()) {
                Some(i) => view_purposes.push(i),
                None => diag.error(
                    p.span(),
                    format!(
                        "unknown purpose `{}`; declared purposes are: {}",
                        p.get_ref(),
                        purpose_names(purposes)
                    ),
                ),
            }
        }
        let mut release: Vec<ViewRelease> = Vec::new();
        for r in &v.release {
            let text = r.get_ref();
            let Some((dataset, field)) = text.rsplit_once('.') else {
                diag.error(r.span(), format!("`release` item `{text}` of view `{name}` is not `department.dataset.field`"));
                continue;
            };
            let Some(source) = sources.iter().find(|s| s.dataset_name == dataset) else {
                diag.error(
                    r.span(),
                    format!(
                        "`release` item `{text}` of view `{name}` names `{dataset}`, which is not one of its sources; its sources are: {}",
                        sources.iter().map(|s| s.dataset_name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            };
            let Some(ds) = datasets.get(source.dataset) else {
                continue;
            };
            let needed: Vec<(&str, FieldTransform)> = source
                .needs
                .iter()
                .filter_map(|(fi, t)| ds.fields.get(*fi).map(|f| (f.name.as_str(), *t)))
                .collect();
            let Some((_, transform)) = needed.iter().find(|(f, _)| *f == field) else {
                let problem = if ds.field_index(field).is_none() {
                    "is not a field of the dataset"
                } else {
                    "is not one the source `needs`, so no node releases it for the view"
                };
                diag.error(
                    r.span(),
                    format!(
                        "`release` item `{text}` of view `{name}`: `{field}` {problem}; the source needs: {}",
                        needed.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            };
            if release
                .iter()
                .any(|x| x.dataset == dataset && x.field == field)
            {
                diag.error(
                    r.span(),
                    format!("`release` item `{text}` of view `{name}` is listed twice"),
                );
                continue;
            }
            release.push(ViewRelease {
                dataset: dataset.to_owned(),
                field: field.to_owned(),
                transform: *transform,
            });
        }
        views.push(View {
            release,
            purposes: view_purposes,
            name,
            kind,
            description: v.description.clone(),
            sources,
            clean_years,
            base_points: v.base_points,
            grades,
        });
    }
    views
}
