"""Small hand-made PubMed XML documents for tests (not copied from anywhere)."""

from __future__ import annotations

HEAD = ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
TAIL = "</PubmedArticleSet>\n"


def article(pmid: int | str, *, version: int = 1, revised: str = "2024-01-02", title: str = "A title.",
            grants: int = 1, refs: tuple[int, ...] = (), extra_medline: str = "", doi: str | None = None) -> str:
    y, m, d = revised.split("-")
    grant_xml = "".join(
        f"<Grant><GrantID>R01 CA{pmid}{i}</GrantID><Acronym>CA</Acronym><Agency>NCI NIH HHS</Agency>"
        f"<Country>United States</Country></Grant>" for i in range(grants))
    ref_xml = "".join(
        f"<Reference><Citation>Ref {r}.</Citation><ArticleIdList><ArticleId IdType=\"pubmed\">{r}</ArticleId>"
        f"</ArticleIdList></Reference>" for r in refs)
    return f"""<PubmedArticle>
<MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="{version}">{pmid}</PMID>
<DateRevised><Year>{y}</Year><Month>{m}</Month><Day>{d}</Day></DateRevised>
<Article PubModel="Print">
<Journal><ISSN IssnType="Print">1234-5678</ISSN><JournalIssue CitedMedium="Print"><Volume>1</Volume>
<PubDate><Year>2020</Year><Month>Mar</Month></PubDate></JournalIssue><Title>Journal of Tests</Title>
<ISOAbbreviation>J Tests</ISOAbbreviation></Journal>
<ArticleTitle>{title}</ArticleTitle>
<Abstract><AbstractText Label="BACKGROUND">x<sup>2</sup> is <i>big</i>.</AbstractText><AbstractText Label="RESULTS">Done.</AbstractText></Abstract>
<AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Doe</LastName><ForeName>Jane</ForeName><Initials>J</Initials>
<Identifier Source="ORCID">https://orcid.org/0000-0002-1825-009X</Identifier>
<AffiliationInfo><Affiliation>Lab A.</Affiliation></AffiliationInfo></Author></AuthorList>
<Language>eng</Language>
<GrantList CompleteYN="Y">{grant_xml}</GrantList>
<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
</Article>
<MedlineJournalInfo><Country>England</Country><MedlineTA>J Tests</MedlineTA><NlmUniqueID>0001</NlmUniqueID></MedlineJournalInfo>
{extra_medline}
</MedlineCitation>
<PubmedData><History><PubMedPubDate PubStatus="entrez"><Year>2020</Year><Month>3</Month><Day>1</Day></PubMedPubDate></History>
<PublicationStatus>ppublish</PublicationStatus>
<ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>{f'<ArticleId IdType="doi">{doi}</ArticleId>' if doi else ''}</ArticleIdList>
{f'<ReferenceList>{ref_xml}</ReferenceList>' if refs else ''}
</PubmedData>
</PubmedArticle>
"""


def document(*articles: str, deleted: tuple[int, ...] = ()) -> bytes:
    delete = ("<DeleteCitation>" + "".join(f'<PMID Version="1">{p}</PMID>' for p in deleted) + "</DeleteCitation>"
              if deleted else "")
    return (HEAD + "".join(articles) + delete + TAIL).encode()
