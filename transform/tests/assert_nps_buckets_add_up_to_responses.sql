-- Every counted answer is a promoter, a passive or a detractor, and only one of them.
select survey_id, question_id, week_start, responses, promoters, passives, detractors
from {{ ref('hotjar__nps') }}
where promoters + passives + detractors <> responses
