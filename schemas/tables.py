"""Every warehouse table, defined once. DDL, Arrow batch schemas and docs/schema.md derive from here."""

from __future__ import annotations

from litmeta.schemas.model import ZSTD_TEXT, Table
from litmeta.schemas.model import Column as C

PMID = C("pmid", "BIGINT", "PubMed identifier of the article the row belongs to", nullable=False)
POSITION = C("position", "INTEGER", "1-based position in document order", nullable=False)
FIRST_SEEN = C("first_seen", "TIMESTAMP", "when this fact was first observed", managed=True)
LAST_SEEN = C("last_seen", "TIMESTAMP", "when this fact was last observed", managed=True)

ARTICLES = Table(
    "articles",
    "One row per PubMed record (journal article or book/chapter), the newest version seen.",
    scope="article",
    key=("pmid",),
    scope_column="pmid",
    volatile=("first_seen", "updated_at", "run_id"),
    columns=(
        PMID,
        C("version", "INTEGER", "PMID Version attribute (1 unless the record was versioned)"),
        C("record_type", "VARCHAR", "'article' (PubmedArticle/MedlineCitation) or 'book' (PubmedBookArticle)"),
        C("status", "VARCHAR", "MedlineCitation Status (MEDLINE, PubMed-not-MEDLINE, In-Process, ...)"),
        C("title", "VARCHAR", "ArticleTitle (or BookTitle) with inline markup flattened to text"),
        C("vernacular_title", "VARCHAR", "VernacularTitle: the title in the original language"),
        C("abstract", "VARCHAR", "Abstract text; structured abstracts as 'LABEL: text' paragraphs joined by newlines"),
        C("language", "VARCHAR", "Language codes, ';'-separated in document order"),
        C("journal_nlm_id", "VARCHAR", "MedlineJournalInfo/NlmUniqueID"),
        C("journal_title", "VARCHAR", "Journal/Title (for books: the publisher)"),
        C("journal_iso_abbrev", "VARCHAR", "Journal/ISOAbbreviation"),
        C("medline_ta", "VARCHAR", "MedlineJournalInfo/MedlineTA (journal title abbreviation)"),
        C("journal_country", "VARCHAR", "MedlineJournalInfo/Country"),
        C("issn_print", "VARCHAR", "ISSN with IssnType='Print'"),
        C("issn_electronic", "VARCHAR", "ISSN with IssnType='Electronic'"),
        C("issn_linking", "VARCHAR", "MedlineJournalInfo/ISSNLinking"),
        C("volume", "VARCHAR", "JournalIssue/Volume"),
        C("issue", "VARCHAR", "JournalIssue/Issue"),
        C("pages", "VARCHAR", "Pagination/MedlinePgn, or StartPage-EndPage"),
        C("pub_year", "INTEGER", "publication year (from Year, or the first year in MedlineDate)"),
        C("pub_month", "INTEGER", "publication month 1-12 when given (Season leaves it NULL)"),
        C("pub_day", "INTEGER", "publication day when given"),
        C("pub_date_text", "VARCHAR", "the PubDate as written (e.g. '2024 Jul 25', '1998 Dec-1999 Jan', '2000 Spring')"),
        C("article_date", "DATE", "ArticleDate (electronic publication date)"),
        C("date_completed", "DATE", "DateCompleted"),
        C("date_revised", "DATE", "DateRevised: with version, decides which record is newer"),
        C("publication_status", "VARCHAR", "PubmedData/PublicationStatus (ppublish, epublish, aheadofprint)"),
        C("pub_model", "VARCHAR", "Article PubModel attribute (Print, Electronic, Print-Electronic, ...)"),
        C("doi", "VARCHAR", "DOI from ArticleIdList, else from ELocationID"),
        C("pmcid", "VARCHAR", "PMC identifier ('PMC...') from ArticleIdList"),
        C("pii", "VARCHAR", "publisher item identifier from ArticleIdList, else from ELocationID"),
        C("coi_statement", "VARCHAR", "CoiStatement (conflict of interest), markup flattened"),
        C("content_sha256", "VARCHAR", "SHA-256 of the record's XML bytes as delivered, from its start tag to its end tag "
          "(`sha256sum` of that text gives it): tells an updated record from a re-delivered one. Where the "
          "bytes cannot be told apart for sure (an input with an internal DTD subset or a non-UTF-8 "
          "encoding, a MedlineCitationSet, two records on one line), of the record serialised by lxml as UTF-8"),
        C("source_sha256", "VARCHAR", "raw_documents.sha256 of the document this record was parsed from"),
        C("run_id", "VARCHAR", "ingest_runs.run_id of the run that last wrote this row", managed=True),
        C("first_seen", "TIMESTAMP", "when the warehouse first loaded this PMID", managed=True),
        C("updated_at", "TIMESTAMP", "when the row's content last changed", managed=True),
    ),
)

ARTICLE_IDS = Table(
    "article_ids",
    "Every ArticleId of the record's own ArticleIdList (pubmed, doi, pmc, pii, mid, ...).",
    scope="article",
    key=("pmid", "id_type", "id_value"),
    scope_column="pmid",
    columns=(
        PMID,
        C("id_type", "VARCHAR", "IdType attribute (pubmed, doi, pmc, pii, mid, bookaccession, ...)", nullable=False),
        C("id_value", "VARCHAR", "the identifier", nullable=False),
    ),
)

AUTHORS = Table(
    "authors",
    "AuthorList entries: persons and collective (group) authors, in byline order.",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("last_name", "VARCHAR", "LastName"),
        C("fore_name", "VARCHAR", "ForeName"),
        C("initials", "VARCHAR", "Initials"),
        C("suffix", "VARCHAR", "Suffix (Jr, III, ...)"),
        C("collective_name", "VARCHAR", "CollectiveName for group authors"),
        C("orcid", "VARCHAR", "ORCID iD, normalised to the bare 0000-0000-0000-000X form"),
        C("is_valid", "BOOLEAN", "ValidYN attribute (false marks a corrected/invalid spelling)"),
        C("equal_contrib", "BOOLEAN", "EqualContrib attribute"),
    ),
)

AFFILIATIONS = Table(
    "affiliations",
    "Affiliations of each author (AffiliationInfo), in document order.",
    scope="article",
    key=("pmid", "author_position", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        C("author_position", "INTEGER", "authors.position of the author", nullable=False),
        POSITION,
        C("affiliation", "VARCHAR", "Affiliation text"),
        C("identifier", "VARCHAR", "first AffiliationInfo/Identifier (ROR, GRID, ISNI) when given"),
    ),
)

GRANTS = Table(
    "grants",
    "GrantList entries (funding).",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("grant_id", "VARCHAR", "GrantID (e.g. 'U10 CA180868')"),
        C("acronym", "VARCHAR", "Acronym (e.g. 'CA')"),
        C("agency", "VARCHAR", "Agency (e.g. 'NCI NIH HHS')"),
        C("country", "VARCHAR", "Country of the agency"),
    ),
)

PUBLICATION_TYPES = Table(
    "publication_types",
    "PublicationTypeList entries.",
    scope="article",
    key=("pmid", "ui"),
    scope_column="pmid",
    columns=(
        PMID,
        C("ui", "VARCHAR", "MeSH UI of the publication type (e.g. D016449)", nullable=False),
        C("name", "VARCHAR", "publication type name (e.g. 'Randomized Controlled Trial')"),
        POSITION,
    ),
)

MESH_HEADINGS = Table(
    "mesh_headings",
    "MeSH headings: one row per descriptor x qualifier; a descriptor without qualifiers has one row with NULL "
    "qualifier. (pmid, position, qualifier_ui) identifies a row for every record with MeSH UIs; legacy records "
    "without UIs need qualifier_position, which is why it is the declared key.",
    scope="article",
    key=("pmid", "position", "qualifier_position"),
    scope_column="pmid",
    columns=(
        PMID,
        C("position", "INTEGER", "1-based position of the descriptor (MeshHeading) in document order", nullable=False),
        C("descriptor_ui", "VARCHAR", "DescriptorName UI"),
        C("descriptor_name", "VARCHAR", "DescriptorName text"),
        C("descriptor_major", "BOOLEAN", "DescriptorName MajorTopicYN"),
        C("qualifier_ui", "VARCHAR", "QualifierName UI (NULL when the descriptor has none)"),
        C("qualifier_name", "VARCHAR", "QualifierName text"),
        C("qualifier_major", "BOOLEAN", "QualifierName MajorTopicYN"),
        C("qualifier_position", "INTEGER", "1-based position of the qualifier under its descriptor (0: none)",
          nullable=False),
    ),
)

CHEMICALS = Table(
    "chemicals",
    "ChemicalList entries (substances).",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("registry_number", "VARCHAR", "RegistryNumber (CAS, EC, or 0)"),
        C("substance_ui", "VARCHAR", "NameOfSubstance UI"),
        C("substance_name", "VARCHAR", "NameOfSubstance text"),
    ),
)

KEYWORDS = Table(
    "keywords",
    "KeywordList entries of every owner, positions running across lists.",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("owner", "VARCHAR", "KeywordList Owner (NOTNLM, NLM, PIP, ...)"),
        C("keyword", "VARCHAR", "the keyword, markup flattened"),
        C("is_major", "BOOLEAN", "MajorTopicYN"),
    ),
)

DATABANKS = Table(
    "databanks",
    "DataBankList accession numbers (trial registries, sequence databases).",
    scope="article",
    key=("pmid", "databank", "accession"),
    scope_column="pmid",
    columns=(
        PMID,
        C("databank", "VARCHAR", "DataBankName (e.g. ClinicalTrials.gov)", nullable=False),
        C("accession", "VARCHAR", "AccessionNumber (e.g. NCT02003222)", nullable=False),
    ),
)

COMMENTS_CORRECTIONS = Table(
    "comments_corrections",
    "CommentsCorrectionsList: comments, errata, retractions, updates linking this record to others.",
    scope="article",
    key=("pmid", "ref_type", "ref_pmid", "ref_source"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("ref_type", "VARCHAR", "RefType (CommentIn, ErratumFor, RetractionIn, UpdateOf, ...)", nullable=False),
        C("ref_pmid", "BIGINT", "PMID of the other record when given"),
        C("ref_source", "VARCHAR", "RefSource citation text"),
    ),
)

HISTORY_DATES = Table(
    "history_dates",
    "PubmedData/History PubMedPubDate entries (received, accepted, pubmed, medline, entrez, ...).",
    scope="article",
    key=("pmid", "pub_status"),
    scope_column="pmid",
    columns=(
        PMID,
        C("pub_status", "VARCHAR", "PubStatus attribute", nullable=False),
        C("date", "DATE", "the date (Year/Month/Day)"),
    ),
)

INVESTIGATORS = Table(
    "investigators",
    "InvestigatorList entries: persons credited with the work who are not authors (e.g. the members of a "
    "trial group), in listed order.",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("last_name", "VARCHAR", "LastName"),
        C("fore_name", "VARCHAR", "ForeName"),
        C("initials", "VARCHAR", "Initials"),
        C("suffix", "VARCHAR", "Suffix (Jr, III, ...)"),
        C("orcid", "VARCHAR", "first ORCID Identifier, normalised to the bare 0000-0000-0000-000X form"),
        C("is_valid", "BOOLEAN", "ValidYN attribute (false marks a corrected/invalid spelling)"),
    ),
)

INVESTIGATOR_AFFILIATIONS = Table(
    "investigator_affiliations",
    "Affiliations of each investigator (AffiliationInfo, or the Affiliation of pre-2014 records), in document order.",
    scope="article",
    key=("pmid", "investigator_position", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        C("investigator_position", "INTEGER", "investigators.position of the investigator", nullable=False),
        POSITION,
        C("affiliation", "VARCHAR", "Affiliation text"),
    ),
)

PERSON_IDENTIFIERS = Table(
    "person_identifiers",
    "Every Identifier of an author or investigator (ORCID and other schemes), with its Source, in document order.",
    scope="article",
    key=("pmid", "role", "person_position", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        C("role", "VARCHAR", "'author' (authors.position) or 'investigator' (investigators.position)", nullable=False),
        C("person_position", "INTEGER", "position of the author or investigator", nullable=False),
        POSITION,
        C("source", "VARCHAR", "Source attribute: the scheme (ORCID, ...)"),
        C("identifier", "VARCHAR", "the identifier as written"),
    ),
)

AFFILIATION_IDENTIFIERS = Table(
    "affiliation_identifiers",
    "Every AffiliationInfo/Identifier (ROR, GRID, ISNI, ...) of an author's or investigator's affiliation, "
    "with its Source, in document order.",
    scope="article",
    key=("pmid", "role", "person_position", "affiliation_position", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        C("role", "VARCHAR", "'author' (affiliations) or 'investigator' (investigator_affiliations)", nullable=False),
        C("person_position", "INTEGER", "position of the author or investigator", nullable=False),
        C("affiliation_position", "INTEGER", "position of the affiliation under that person", nullable=False),
        POSITION,
        C("source", "VARCHAR", "Source attribute: the scheme (ROR, GRID, ISNI, ...)"),
        C("identifier", "VARCHAR", "the identifier as written"),
    ),
)

SUPPLEMENTARY_MESH = Table(
    "supplementary_mesh",
    "SupplMeshList entries: MeSH supplementary concepts (diseases, protocols, organisms, ...).",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("ui", "VARCHAR", "SupplMeshName UI (e.g. C536330)"),
        C("name", "VARCHAR", "SupplMeshName text"),
        C("type", "VARCHAR", "Type attribute (Disease, Protocol, Organism, ...)"),
    ),
)

OTHER_ABSTRACTS = Table(
    "other_abstracts",
    "OtherAbstract entries: abstracts from other sources (publisher, NASA, KIE, ...) or in other languages.",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("type", "VARCHAR", "Type attribute (Publisher, NASA, KIE, AAMC, ...)"),
        C("language", "VARCHAR", "Language attribute"),
        C("abstract", "VARCHAR", "AbstractText paragraphs as in articles.abstract ('LABEL: text', newline-joined)"),
        C("copyright", "VARCHAR", "CopyrightInformation"),
    ),
)

OTHER_IDS = Table(
    "other_ids",
    "OtherID entries: identifiers other systems give the record (NLM's PMC ids of old records, NASA, KIE, ...).",
    scope="article",
    key=("pmid", "position"),
    scope_column="pmid",
    columns=(
        PMID,
        POSITION,
        C("source", "VARCHAR", "Source attribute (NLM, NASA, KIE, PIP, ...)"),
        C("other_id", "VARCHAR", "the identifier as written"),
    ),
)

REFERENCE_ENTRIES = Table(
    "reference_entries",
    "Reference lists: PubmedData/ReferenceList (origin 'pubmed', nested lists flattened in order) "
    "and JATS ref-list of PMC articles (origin 'pmc').",
    scope="article",
    key=("citing_pmid", "origin", "position"),
    scope_column="citing_pmid",
    columns=(
        C("citing_pmid", "BIGINT", "PMID of the article whose reference list this is", nullable=False),
        C("origin", "VARCHAR", "'pubmed' or 'pmc'", nullable=False),
        POSITION,
        C("citation", "VARCHAR", "Citation text as given", compression=ZSTD_TEXT),
        C("cited_pmid", "BIGINT", "PMID of the cited work when known"),
        C("cited_doi", "VARCHAR", "DOI of the cited work when known"),
        C("cited_pmcid", "VARCHAR", "PMCID of the cited work when known"),
    ),
)

PMC_ARTICLES = Table(
    "pmc_articles",
    "PMC (JATS) articles: front-matter identifiers and licence.",
    scope="article",
    key=("pmcid",),
    scope_column="pmcid",
    volatile=("first_seen", "updated_at"),
    columns=(
        C("pmcid", "VARCHAR", "PMC identifier, 'PMC' + digits", nullable=False),
        C("pmid", "BIGINT", "PMID when the article-meta gives one"),
        C("doi", "VARCHAR", "DOI"),
        C("article_type", "VARCHAR", "article-type attribute (research-article, review-article, ...)"),
        C("title", "VARCHAR", "article-title, markup flattened"),
        C("journal_title", "VARCHAR", "journal-title"),
        C("pub_year", "INTEGER", "year of the first pub-date"),
        C("license", "VARCHAR", "licence URL or text"),
        C("n_references", "INTEGER", "number of ref elements in the ref-list"),
        C("content_sha256", "VARCHAR", "SHA-256 of the article XML"),
        C("source_sha256", "VARCHAR", "raw_documents.sha256 of the document this came from"),
        FIRST_SEEN,
        C("updated_at", "TIMESTAMP", "when the row's content last changed", managed=True),
    ),
)

CITATION_EDGES = Table(
    "citation_edges",
    "Who cites whom, from every source that says so, each edge observed over time.",
    scope="edge",
    key=("citing_pmid", "cited_pmid", "origin"),
    volatile=("first_seen", "last_seen"),
    columns=(
        C("citing_pmid", "BIGINT", "the citing article", nullable=False),
        C("cited_pmid", "BIGINT", "the cited article", nullable=False),
        C("origin", "VARCHAR", "'pubmed_reflist', 'pmc_reflist', 'elink_refs', 'elink_citedin', 'icite_refs' or "
          "'icite_citedby'", nullable=False),
        FIRST_SEEN,
        LAST_SEEN,
        C("resolved_by", "VARCHAR", "for a reference-list edge whose entry named no PMID: how its DOI, PMCID or "
          "citation text was resolved ('idconv', 'esearch', 'ecitmatch'; see id_map); NULL otherwise", managed=True),
    ),
)

ICITE_METRICS = Table(
    "icite_metrics",
    "NIH iCite's metrics of an article, one row per observation (a network run that asked iCite), so growth "
    "over time is a query.",
    scope="log",
    key=("pmid", "observed_at"),
    volatile=("observed_at", "run_id"),
    columns=(
        PMID,
        C("observed_at", "TIMESTAMP", "when observed", nullable=False, managed=True),
        C("run_id", "VARCHAR", "the observing run", managed=True),
        C("year", "INTEGER", "publication year as iCite has it"),
        C("title", "VARCHAR", "title as iCite has it"),
        C("doi", "VARCHAR", "DOI as iCite has it"),
        C("relative_citation_ratio", "DOUBLE", "RCR: citations per year relative to the field's (NULL while too new)"),
        C("nih_percentile", "DOUBLE", "percentile of the RCR among NIH-funded articles"),
        C("citation_count", "INTEGER", "citing articles iCite knows"),
        C("citations_per_year", "DOUBLE", "citations per year since publication"),
        C("expected_citations_per_year", "DOUBLE", "citations per year expected for the field"),
        C("field_citation_rate", "DOUBLE", "the field's citation rate (from co-cited articles)"),
        C("apt", "DOUBLE", "approximate potential to translate (0.05 .. 0.95)"),
        C("is_clinical", "BOOLEAN", "a clinical article"),
        C("is_research_article", "BOOLEAN", "a primary research article"),
        C("provisional", "BOOLEAN", "the RCR is provisional (article under two years old)"),
        C("human", "DOUBLE", "share of MeSH terms on humans (triangle of biomedicine)"),
        C("animal", "DOUBLE", "share of MeSH terms on animals"),
        C("molecular_cellular", "DOUBLE", "share of MeSH terms on molecular/cellular biology"),
        C("references_count", "INTEGER", "references iCite lists"),
        C("cited_by_count", "INTEGER", "citing articles iCite lists"),
        C("cited_by_clin", "JSON", "PMIDs of citing clinical articles (a JSON list)"),
        C("last_modified", "VARCHAR", "iCite's last_modified, as given"),
        C("source_sha256", "VARCHAR", "raw_documents.sha256 of the iCite answer"),
    ),
)

ID_MAP = Table(
    "id_map",
    "DOIs, PMCIDs and citation texts of reference entries that named no PMID, and what resolving them found.",
    scope="state",
    key=("id_type", "id_value"),
    volatile=("observed_at", "run_id"),
    columns=(
        C("id_type", "VARCHAR", "'doi', 'pmcid' or 'citation' (an entry with no id: journal, year, volume and "
          "first page read from its text)", nullable=False),
        C("id_value", "VARCHAR", "the id, normalised (DOIs lower-cased, PMCIDs 'PMC' + digits, citations "
          "'journal|year|volume|first page' lower-cased)", nullable=False),
        C("pmid", "BIGINT", "the one PMID found (NULL when ambiguous or unresolved)"),
        C("resolved_by", "VARCHAR", "'idconv' (PMC ID Converter), 'esearch' (E-utilities search) or 'ecitmatch' "
          "(E-utilities citation matcher); NULL when unresolved"),
        C("status", "VARCHAR", "'resolved', 'ambiguous' (several PMIDs: never an edge) or 'unresolved'"),
        C("candidates", "VARCHAR", "comma list of the PMIDs found when ambiguous"),
        C("observed_at", "TIMESTAMP", "when last asked", managed=True),
        C("run_id", "VARCHAR", "the run that last asked", managed=True),
    ),
)

SIMILAR_ARTICLES = Table(
    "similar_articles",
    "PubMed's similar articles (elink pubmed_pubmed), observed over time.",
    scope="edge",
    key=("pmid", "similar_pmid"),
    volatile=("first_seen", "last_seen"),
    columns=(
        PMID,
        C("similar_pmid", "BIGINT", "a similar article", nullable=False),
        C("score", "BIGINT", "elink neighbor_score Score (NULL when unknown)"),
        C("rank", "INTEGER", "1-based rank in the latest observation (by score, else as listed)"),
        FIRST_SEEN,
        LAST_SEEN,
    ),
)

FULL_TEXT_LINKS = Table(
    "full_text_links",
    "LinkOut links of each article (elink cmd=prlinks / llinks IdUrlList answers): full-text sources and "
    "other resources, observed over time.",
    scope="edge",
    key=("pmid", "provider", "url"),
    volatile=("first_seen", "last_seen"),
    columns=(
        PMID,
        C("provider", "VARCHAR", "Provider/Name (e.g. 'HighWire', 'EBSCO')", nullable=False),
        C("url", "VARCHAR", "ObjUrl/Url: the link, as given", nullable=False),
        C("category", "VARCHAR", "Category ('Full Text Sources', 'Medical', 'Libraries', ...); '; '-joined when several"),
        C("attributes", "JSON", "Attribute texts as a JSON list (e.g. [\"free resource\", \"full-text online\"])"),
        C("subject_type", "VARCHAR", "SubjectType ('publishers/providers', 'aggregators', ...); '; '-joined when several"),
        C("link_name", "VARCHAR", "LinkName when given"),
        C("provider_abbr", "VARCHAR", "Provider/NameAbbr"),
        C("provider_id", "VARCHAR", "Provider/Id (LinkOut provider id)"),
        FIRST_SEEN,
        LAST_SEEN,
    ),
)

SEEDS = Table(
    "seeds",
    "Seed articles whose networks are tracked, with the parameters they were registered with.",
    scope="state",
    key=("seed_pmid",),
    volatile=("added_at", "last_refreshed_at"),
    columns=(
        C("seed_pmid", "BIGINT", "the seed article", nullable=False),
        C("depth", "INTEGER", "hops from the seed"),
        C("relations", "VARCHAR", "comma list of refs, cited_by, similar"),
        C("max_nodes", "INTEGER", "cap on members (NULL: none)"),
        C("similar_top", "INTEGER", "top-K similar articles taken per member"),
        C("sources", "VARCHAR", "comma list of the citation sources expanded over (elink, icite); NULL: both"),
        C("added_at", "TIMESTAMP", "when the seed was registered", managed=True),
        C("last_refreshed_at", "TIMESTAMP", "when its network was last observed", managed=True),
    ),
)

NETWORK_MEMBERS = Table(
    "network_members",
    "Members of each seed's network (the seed itself has hop 0).",
    scope="edge",
    key=("seed_pmid", "pmid"),
    volatile=("first_seen", "last_seen"),
    columns=(
        C("seed_pmid", "BIGINT", "the seed", nullable=False),
        PMID,
        C("hop", "INTEGER", "breadth-first distance from the seed (closest seen)"),
        C("via", "VARCHAR", "'seed', 'refs', 'cited_by' or 'similar': how the member was first reached"),
        FIRST_SEEN,
        LAST_SEEN,
    ),
)

LINK_SNAPSHOTS = Table(
    "link_snapshots",
    "Link counts of each network member at each observation (one row per member per run).",
    scope="log",
    key=("pmid", "run_id"),
    volatile=("run_id", "observed_at"),
    columns=(
        PMID,
        C("run_id", "VARCHAR", "the observing run", nullable=False),
        C("seed_pmid", "BIGINT", "the seed whose refresh observed it"),
        C("observed_at", "TIMESTAMP", "when observed"),
        C("cited_by_count", "INTEGER", "pubmed_pubmed_citedin links (NULL when not asked)"),
        C("references_count", "INTEGER", "pubmed_pubmed_refs links (NULL when not asked)"),
        C("similar_count", "INTEGER", "pubmed_pubmed similar links (NULL when not asked)"),
    ),
)

SAVED_SEARCHES = Table(
    "saved_searches",
    "Searches saved with 'litmeta search --save'; 'litmeta serve' schedules them.",
    scope="state",
    key=("query",),
    volatile=("added_at",),
    columns=(
        C("query", "VARCHAR", "the PubMed query", nullable=False),
        C("parameters", "JSON", "mindate, maxdate, max_records"),
        C("added_at", "TIMESTAMP", "when saved", managed=True),
    ),
)

DELETED_ARTICLES = Table(
    "deleted_articles",
    "PMIDs removed by a DeleteCitation (their rows are deleted from every article table).",
    scope="state",
    key=("pmid",),
    volatile=("deleted_at",),
    columns=(
        PMID,
        C("deleted_at", "TIMESTAMP", "when the deletion was loaded", managed=True),
        C("source", "VARCHAR", "the file or request that carried the DeleteCitation"),
    ),
)

INGEST_RUNS = Table(
    "ingest_runs",
    "One row per flow run: what it was asked, what it did, whether it finished.",
    scope="log",
    key=("run_id",),
    volatile=("run_id", "started_at", "finished_at"),
    columns=(
        C("run_id", "VARCHAR", "run identifier (the Prefect flow run id when run by Prefect)", nullable=False),
        C("flow", "VARCHAR", "flow name"),
        C("started_at", "TIMESTAMP", "start time"),
        C("finished_at", "TIMESTAMP", "end time (NULL while running or if the run died)"),
        C("status", "VARCHAR", "'running', 'completed', 'completed_with_rejects', 'failed', 'interrupted' (Ctrl-C; or killed, then marked by the next run with finished_at NULL)"),
        C("parameters", "JSON", "run parameters (secrets removed)"),
        C("counts", "JSON", "records/edges new and updated, rejects, per table"),
        C("http_requests", "INTEGER", "HTTP requests made (retries included)"),
    ),
)

RAW_DOCUMENTS = Table(
    "raw_documents",
    "Every document fetched or loaded, for provenance and re-parsing without re-fetching.",
    scope="log",
    key=("sha256",),
    volatile=("fetched_at", "run_id"),
    columns=(
        C("sha256", "VARCHAR", "SHA-256 of the uncompressed body", nullable=False),
        C("kind", "VARCHAR", "efetch_pubmed, efetch_pmc, elink, esearch, file, ..."),
        C("request", "VARCHAR", "request description or file path (never the api_key)"),
        C("fetched_at", "TIMESTAMP", "when fetched or loaded"),
        C("n_records", "INTEGER", "records in the document"),
        C("body", "BLOB", "gzip-compressed body (NULL for local files, which stay where they are)"),
        C("run_id", "VARCHAR", "the run that first stored it"),
    ),
)

REJECTS = Table(
    "rejects",
    "Records (or whole inputs) that could not be loaded, with the reason; the rest of their batch loads.",
    scope="log",
    key=("run_id", "source", "record_key"),
    volatile=("run_id", "at"),
    columns=(
        C("run_id", "VARCHAR", "the run", nullable=False),
        C("source", "VARCHAR", "file path or request description", nullable=False),
        C("record_key", "VARCHAR", "PMID, or 'record N' / 'line N' when no PMID could be read", nullable=False),
        C("reason", "VARCHAR", "what is wrong"),
        C("excerpt", "VARCHAR", "the start of the offending input"),
        C("at", "TIMESTAMP", "when rejected"),
    ),
)

SOURCE_FILES = Table(
    "source_files",
    "Every local file loaded (litmeta load) or mirrored: where loaded rows came from, and what a re-run may skip.",
    scope="state",
    key=("path",),
    volatile=("mtime", "downloaded_at", "sharded_at", "loaded_at", "run_id"),
    columns=(
        C("path", "VARCHAR", "absolute path of the file (or the FTP file name of a mirrored one)", nullable=False),
        C("kind", "VARCHAR", "'pubmed' or 'pmc'"),
        C("size", "BIGINT", "bytes, as loaded"),
        C("mtime", "TIMESTAMP", "modification time, as loaded (UTC)"),
        C("sha256", "VARCHAR", "SHA-256 of the file's bytes, as loaded (raw_documents.sha256)"),
        C("md5", "VARCHAR", "MD5 published for a mirrored file"),
        C("downloaded_at", "TIMESTAMP", "when a mirrored file was downloaded"),
        C("sharded_at", "TIMESTAMP", "when a mirrored file was parsed into shards"),
        C("loaded_at", "TIMESTAMP", "when its records were loaded (NULL: not completely)"),
        C("records", "INTEGER", "records read from it"),
        C("deletions", "INTEGER", "DeleteCitation PMIDs in it"),
        C("run_id", "VARCHAR", "the run that loaded it"),
    ),
)

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    "Applied warehouse migrations.",
    scope="log",
    key=("version",),
    volatile=("applied_at",),
    columns=(
        C("version", "INTEGER", "migration number", nullable=False),
        C("name", "VARCHAR", "what it does"),
        C("applied_at", "TIMESTAMP", "when applied"),
    ),
)

NETWORK_METRICS = Table(
    "network_metrics",
    "Per-member metrics of each seed's network at each observation, computed from the warehouse alone "
    "(litmeta.warehouse.metrics): local and global citation counts, PageRank, a Louvain community.",
    scope="log",
    key=("seed_pmid", "pmid", "observed_at"),
    volatile=("run_id",),
    columns=(
        C("seed_pmid", "BIGINT", "the seed", nullable=False),
        PMID,
        C("observed_at", "TIMESTAMP", "the observation the metrics describe (seeds.last_refreshed_at then)", nullable=False),
        C("run_id", "VARCHAR", "the run that observed the network"),
        C("hop", "INTEGER", "network_members.hop at that observation"),
        C("via", "VARCHAR", "network_members.via at that observation"),
        C("local_cited_by", "INTEGER", "members citing this article (in-degree in the network's citation graph)"),
        C("local_references", "INTEGER", "members this article cites (out-degree in the network's citation graph)"),
        C("global_cited_by", "INTEGER", "citing articles anywhere: iCite's citation_count when held, else elink's "
          "cited_by_count from link_snapshots (NULL when neither is known)"),
        C("global_cited_by_source", "VARCHAR", "'icite' or 'elink': where global_cited_by comes from"),
        C("pagerank", "DOUBLE", "PageRank on the citation graph (citing -> cited, alpha 0.85); sums to 1 per observation"),
        C("pagerank_rank", "INTEGER", "1-based rank by PageRank (ties by PMID)"),
        C("community", "INTEGER", "Louvain community on the undirected citation graph (fixed random seed); "
          "0 is the largest, ties by smallest PMID"),
        C("betweenness", "DOUBLE", "normalised betweenness centrality; NULL when the network was too large to "
          "compute it (see litmeta.warehouse.metrics.BETWEENNESS_MAX_WORK)"),
    ),
)

NOTIFICATIONS = Table(
    "notifications",
    "Digests posted to a webhook (litmeta digest/refresh --notify): one row per seed, observation and "
    "target, so the same change is never sent twice.",
    scope="log",
    key=("seed_pmid", "observed_at", "target_sha256"),
    volatile=("sent_at", "run_id"),
    columns=(
        C("seed_pmid", "BIGINT", "the seed", nullable=False),
        C("observed_at", "TIMESTAMP", "the latest observation the digest reported", nullable=False),
        C("target_sha256", "VARCHAR", "SHA-256 of the webhook URL (a webhook URL is a secret: never stored)",
          nullable=False),
        C("since", "TIMESTAMP", "the observation the digest compared against (NULL: the first)"),
        C("digest_sha256", "VARCHAR", "SHA-256 of the JSON body posted"),
        C("status", "INTEGER", "HTTP status of the webhook's answer"),
        C("sent_at", "TIMESTAMP", "when posted", managed=True),
        C("run_id", "VARCHAR", "the refresh run that posted it (NULL for 'litmeta digest --notify')"),
    ),
)

ALL_TABLES: tuple[Table, ...] = (
    ARTICLES,
    ARTICLE_IDS,
    AUTHORS,
    AFFILIATIONS,
    GRANTS,
    PUBLICATION_TYPES,
    MESH_HEADINGS,
    CHEMICALS,
    KEYWORDS,
    DATABANKS,
    COMMENTS_CORRECTIONS,
    HISTORY_DATES,
    INVESTIGATORS,
    INVESTIGATOR_AFFILIATIONS,
    PERSON_IDENTIFIERS,
    AFFILIATION_IDENTIFIERS,
    SUPPLEMENTARY_MESH,
    OTHER_ABSTRACTS,
    OTHER_IDS,
    REFERENCE_ENTRIES,
    PMC_ARTICLES,
    CITATION_EDGES,
    SIMILAR_ARTICLES,
    FULL_TEXT_LINKS,
    SEEDS,
    NETWORK_MEMBERS,
    LINK_SNAPSHOTS,
    SAVED_SEARCHES,
    DELETED_ARTICLES,
    INGEST_RUNS,
    RAW_DOCUMENTS,
    REJECTS,
    SOURCE_FILES,
    SCHEMA_MIGRATIONS,
    ICITE_METRICS,
    ID_MAP,
    NETWORK_METRICS,
    NOTIFICATIONS,
)

TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}

# Tables whose rows a PubMed record owns (replaced together when a newer record arrives).
PUBMED_RECORD_TABLES: tuple[Table, ...] = (
    ARTICLES,
    ARTICLE_IDS,
    AUTHORS,
    AFFILIATIONS,
    GRANTS,
    PUBLICATION_TYPES,
    MESH_HEADINGS,
    CHEMICALS,
    KEYWORDS,
    DATABANKS,
    COMMENTS_CORRECTIONS,
    HISTORY_DATES,
    INVESTIGATORS,
    INVESTIGATOR_AFFILIATIONS,
    PERSON_IDENTIFIERS,
    AFFILIATION_IDENTIFIERS,
    SUPPLEMENTARY_MESH,
    OTHER_ABSTRACTS,
    OTHER_IDS,
)
